"""The building blocks of ConvMLP (paper section 3, Table 1): tokenizer, conv
stage, Conv-MLP block, downsamplers and Conv-MLP stage; and those of the
Pure-MLP baseline (Table 2): the channel-MLP block, Swin's patch merging and
the channel-MLP stage in the conv stage's place.

Each owns its ``forward``; with ``with_cp=True`` a block runs its
``_inner_forward`` under activation checkpointing
(:func:`~convmlp_mm.models.layers.layout.checkpoint_forward`), as mmpretrain's
and mmdet's backbones do. Module names follow the original release, so its
checkpoints load without renaming a key.

Layouts: the tokenizer and the conv stage take NCHW-shaped tensors (with
channels-last strides in the backbone); the Conv-MLP blocks, stages and
downsamplers take and return the NHWC view of the same memory.
"""
import contextlib
from typing import Iterator, List, Optional, Sequence, Type

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmcv.cnn.bricks.transformer import PatchMerging

from convmlp_mm.models.layers.layout import (
    MLP_IMPLS,
    channel_linear,
    checkpoint_forward,
)


def _conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int, stride: int,
                  norm_cfg: dict) -> List[nn.Module]:
    # Kept as flat Sequential entries (conv, norm, act) because the official
    # checkpoints index them as ``block.0``, ``block.1``, ``block.3``...
    return [
        nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2,
                  bias=False),
        build_norm_layer(norm_cfg, out_ch)[1],
        nn.ReLU(inplace=True),
    ]


class ConvTokenizer(nn.Module):
    """Three 3x3 conv-BN-ReLU (first with stride 2) and a stride-2 max-pool:
    output stride 4, ``channels`` wide.

    With ``with_cp`` each conv-BN-ReLU is its own checkpoint: its stride-2
    activations are the largest in the network, and one checkpoint per layer
    keeps just one of them alive while the backward pass recomputes.
    """

    def __init__(self, in_channels: int, channels: int, norm_cfg: dict,
                 with_cp: bool = False):
        super().__init__()
        half = channels // 2
        self.with_cp = with_cp
        self.block = nn.Sequential(
            *_conv_bn_relu(in_channels, half, 3, 2, norm_cfg),
            *_conv_bn_relu(half, half, 3, 1, norm_cfg),
            *_conv_bn_relu(half, channels, 3, 1, norm_cfg),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.with_cp:
            return self.block(x)
        for i in range(0, len(self.block), 3):
            layer = self.block[i:i + 3]
            x = checkpoint_forward(layer, layer, x)
        return x


class ConvBottleneck(nn.Sequential):
    """``x + (1x1 -> 3x3 -> 1x1 conv-BN-ReLU)(x)``."""

    def __init__(self, channels: int, hidden: int, norm_cfg: dict,
                 with_cp: bool = False):
        super().__init__(
            *_conv_bn_relu(channels, hidden, 1, 1, norm_cfg),
            *_conv_bn_relu(hidden, hidden, 3, 1, norm_cfg),
            *_conv_bn_relu(hidden, channels, 1, 1, norm_cfg))
        self.with_cp = with_cp

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp:
            return x + checkpoint_forward(self, self._inner_forward, x)
        return x + self._inner_forward(x)


class ConvStage(nn.Module):
    """Residual bottlenecks at width C1, then a 3x3 stride-2 conv to C2."""

    def __init__(self, num_blocks: int, channels: int, hidden: int,
                 out_channels: int, norm_cfg: dict, with_cp: bool = False):
        super().__init__()
        self.conv_blocks = nn.ModuleList(
            ConvBottleneck(channels, hidden, norm_cfg, with_cp)
            for _ in range(num_blocks))
        self.downsample = nn.Conv2d(channels, out_channels, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.conv_blocks:
            x = block(x)
        return self.downsample(x)


class Mlp(nn.Module):
    """Linear -> GELU -> Linear on the last (channel) dimension; ``impl``
    picks how the Linear is computed (see
    :func:`~convmlp_mm.models.layers.layout.channel_linear`)."""

    def __init__(self, dim: int, hidden: int, impl: str = 'auto'):
        super().__init__()
        self.impl = impl
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(channel_linear(self.fc1, x, self.impl))
        return channel_linear(self.fc2, x, self.impl)


@contextlib.contextmanager
def channel_mlps_as(model: nn.Module, impl: str) -> Iterator[nn.Module]:
    """Within the block, every channel MLP (:class:`Mlp`) of ``model``
    computes its ``nn.Linear`` by ``impl`` (one of ``MLP_IMPLS``); their own
    setting comes back after. The ONNX export traces with ``'linear'``, so
    the graph does not depend on the CPU that exported it."""
    if impl not in MLP_IMPLS:
        raise ValueError(f'impl must be one of {", ".join(MLP_IMPLS)}, '
                         f'got "{impl}".')
    mlps = [m for m in model.modules() if isinstance(m, Mlp)]
    saved = [m.impl for m in mlps]
    for m in mlps:
        m.impl = impl
    try:
        yield model
    finally:
        for m, old in zip(mlps, saved):
            m.impl = old


class ChannelMLPBlock(nn.Module):
    """Two channel MLPs on NHWC tensors, ``x + MLP1(LN(x))`` then
    ``x + MLP2(LN(x))``, both residual branches with stochastic depth: the
    paper's pure channel-MLP block (the Pure-MLP baseline, Table 2).

    :class:`ConvMLPBlock` puts its depthwise convolution between the two
    (:meth:`_build_between`, :meth:`_between`); the modules are registered
    in the release's order, so a seeded initialisation draws alike.
    """

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float,
                 mlp_impl: str = 'auto', with_cp: bool = False):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.with_cp = with_cp
        self.norm1 = nn.LayerNorm(dim)
        self.channel_mlp1 = Mlp(dim, hidden, mlp_impl)
        self.norm2 = nn.LayerNorm(dim)
        self._build_between(dim)
        self.channel_mlp2 = Mlp(dim, hidden, mlp_impl)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()

    def _build_between(self, dim: int) -> None:
        """The layers between the two channel MLPs: none here."""

    def _between(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.channel_mlp1(self.norm1(x)))
        x = self._between(x)
        return x + self.drop_path(self.channel_mlp2(self.norm2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp:
            return checkpoint_forward(self, self._inner_forward, x)
        return self._inner_forward(x)


class ConvMLPBlock(ChannelMLPBlock):
    """Channel MLP, 3x3 depthwise conv, channel MLP, on NHWC tensors.

    ``x + MLP1(LN(x))``; ``DWConv(LN(x))`` with no residual (as released);
    ``x + MLP2(LN(x))``, both residual branches with stochastic depth.
    """

    def _build_between(self, dim: int) -> None:
        self.connect = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim, bias=False)
        self.connect_norm = nn.LayerNorm(dim)

    def _between(self, x: torch.Tensor) -> torch.Tensor:
        # NHWC -> NCHW view with channels-last strides: the conv reads it in
        # place and returns channels-last, whose NHWC view is contiguous.
        x = self.connect(self.connect_norm(x).permute(0, 3, 1, 2))
        return x.permute(0, 2, 3, 1)


class ConvDownsample(nn.Module):
    """3x3 stride-2 conv between Conv-MLP stages, NHWC in and out."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.downsample = nn.Conv2d(in_dim, out_dim, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PatchMergingDownsample(nn.Module):
    """Swin's linear patch merging (each 2x2 neighbourhood concatenated,
    LayerNorm, bias-free Linear to ``out_dim``), NHWC in and out: the paper's
    Pure-MLP baseline downsampler. Odd sides are padded at the bottom/right,
    so a side of n becomes ceil(n/2) as with the stride-2 conv."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.downsample = PatchMerging(in_dim, out_dim, kernel_size=2,
                                       padding='corner', bias=False,
                                       norm_cfg=dict(type='LN'))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        x, (out_h, out_w) = self.downsample(x.reshape(b, h * w, c), (h, w))
        return x.view(b, out_h, out_w, -1)


# The downsamplers between Conv-MLP stages, by the name a config gives.
DOWNSAMPLES = {'conv': ConvDownsample, 'patch_merging': PatchMergingDownsample}


class ConvMLPStage(nn.Module):
    """``block`` modules (:class:`ConvMLPBlock` or, for the Pure-MLP
    baseline, :class:`ChannelMLPBlock`), then (except for the last stage)
    a ``downsample`` (a class of :data:`DOWNSAMPLES`); NHWC in and out."""

    def __init__(self, num_blocks: int, dim: int, out_dim: Optional[int],
                 mlp_ratio: float, drop_path_rates: Sequence[float],
                 block: Type[ChannelMLPBlock] = ConvMLPBlock,
                 downsample: Type[nn.Module] = ConvDownsample,
                 mlp_impl: str = 'auto', with_cp: bool = False):
        super().__init__()
        if len(drop_path_rates) != num_blocks:
            raise ValueError(f'ConvMLPStage got {len(drop_path_rates)} drop '
                             f'path rates for {num_blocks} blocks.')
        self.blocks = nn.ModuleList(
            block(dim, mlp_ratio, dpr, mlp_impl, with_cp)
            for dpr in drop_path_rates)
        self.downsample_mlp = downsample(dim, out_dim) if out_dim else \
            nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample_mlp(x)


class ChannelMLPStem(ConvMLPStage):
    """The Pure-MLP baseline's first stage, in the conv stage's place:
    channel-MLP blocks at width C1, then the downsample to C2. It takes and
    returns NCHW-shaped tensors with channels-last strides, as the conv
    stage does, working on their NHWC views (``permute``: no copy)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
