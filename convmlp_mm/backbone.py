"""ConvMLP backbone (Li et al., "ConvMLP: Hierarchical Convolutional MLPs for
Vision", arXiv 2109.04454) for mmdet 3 and mmsegmentation 1.

Module and parameter names follow the original release, so its ImageNet
checkpoints load without renaming any key (see :mod:`convmlp_mm.checkpoint`).

Memory layout: the network runs channels-last throughout. The tokenizer and
the conv stage take an NCHW-shaped tensor with channels-last strides; the
Conv-MLP stages work on the NHWC view of the same memory (``permute`` is
free), so LayerNorm and Linear see contiguous channels and the depthwise and
downsampling convolutions see channels-last input. No layout conversion copies
memory between the input and the four outputs. The convolution weights are
kept channels-last too, so oneDNN does not reorder them on every call, and the
gradients that come back through the (contiguous NCHW) outputs are turned
channels-last before they meet the trunk's own.
"""
import difflib
import inspect
import warnings
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmcv.cnn.bricks.transformer import PatchMerging
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from .arch import NUM_LEVELS, NUM_STAGES, resolve_arch
from .checkpoint import load_backbone_checkpoint

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
    output stride 4, ``channels`` wide."""

    def __init__(self, in_channels: int, channels: int, norm_cfg: dict):
        super().__init__()
        half = channels // 2
        self.block = nn.Sequential(
            *_conv_bn_relu(in_channels, half, 3, 2, norm_cfg),
            *_conv_bn_relu(half, half, 3, 1, norm_cfg),
            *_conv_bn_relu(half, channels, 3, 1, norm_cfg),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class ConvBottleneck(nn.Sequential):
    """1x1 -> 3x3 -> 1x1 conv-BN-ReLU; the residual is added by the stage."""

    def __init__(self, channels: int, hidden: int, norm_cfg: dict):
        super().__init__(
            *_conv_bn_relu(channels, hidden, 1, 1, norm_cfg),
            *_conv_bn_relu(hidden, hidden, 3, 1, norm_cfg),
            *_conv_bn_relu(hidden, channels, 1, 1, norm_cfg))


class ConvStage(nn.Module):
    """Residual bottlenecks at width C1, then a 3x3 stride-2 conv to C2."""

    def __init__(self, num_blocks: int, channels: int, hidden: int,
                 out_channels: int, norm_cfg: dict):
        super().__init__()
        self.conv_blocks = nn.ModuleList(
            ConvBottleneck(channels, hidden, norm_cfg)
            for _ in range(num_blocks))
        self.downsample = nn.Conv2d(channels, out_channels, 3, 2, 1)


def channel_linear(fc: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``fc(x)`` over the channels of an NHWC tensor.

    In fp32 on CPU this runs as the same product written as a 1x1 convolution
    of the NCHW view (channels-last memory: no copy), which oneDNN computes,
    while ``F.linear`` goes to the BLAS, whose fp32 GEMM ran at half oneDNN's
    rate on this project's AMD CPUs (README, Performance). Results agree to
    float rounding; the parameters stay the Linear's. Under bf16 autocast,
    ``F.linear`` already goes to oneDNN and was the faster of the two; on
    other devices it is the fast path too.
    """
    if (x.device.type != 'cpu' or x.dim() != 4 or x.dtype != torch.float32
            or torch.is_autocast_enabled('cpu')):
        return fc(x)
    return F.conv2d(x.permute(0, 3, 1, 2), fc.weight[:, :, None, None],
                    fc.bias).permute(0, 2, 3, 1)


class Mlp(nn.Module):
    """Linear -> GELU -> Linear on the last (channel) dimension."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_linear(self.fc2, self.act(channel_linear(self.fc1, x)))


class ConvMLPBlock(nn.Module):
    """Channel MLP, 3x3 depthwise conv, channel MLP, on NHWC tensors.

    ``x + MLP1(LN(x))``; ``DWConv(LN(x))`` with no residual (as released);
    ``x + MLP2(LN(x))``, both residual branches with stochastic depth.
    ``dwconv=False`` drops the depthwise conv and its LayerNorm: the paper's
    pure channel-MLP block (Table 2 ablation).
    """

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float,
                 dwconv: bool = True):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.dwconv = dwconv
        self.norm1 = nn.LayerNorm(dim)
        self.channel_mlp1 = Mlp(dim, hidden)
        self.norm2 = nn.LayerNorm(dim)
        if dwconv:
            self.connect = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim,
                                     bias=False)
            self.connect_norm = nn.LayerNorm(dim)
        self.channel_mlp2 = Mlp(dim, hidden)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.channel_mlp1(self.norm1(x)))
        if self.dwconv:
            # NHWC -> NCHW view with channels-last strides: the conv reads it
            # in place and returns channels-last, whose NHWC view is
            # contiguous.
            x = self.connect(self.connect_norm(x).permute(0, 3, 1, 2))
            x = x.permute(0, 2, 3, 1)
        return x + self.drop_path(self.channel_mlp2(self.norm2(x)))


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


DOWNSAMPLES = {'conv': ConvDownsample, 'patch_merging': PatchMergingDownsample}


class ConvMLPStage(nn.Module):
    """Conv-MLP blocks, then (except for the last stage) a downsample."""

    def __init__(self, num_blocks: int, dim: int, out_dim: Optional[int],
                 mlp_ratio: float, drop_path_rates: Sequence[float],
                 downsample: str = 'conv', dwconv: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(
            ConvMLPBlock(dim, mlp_ratio, dpr, dwconv)
            for dpr in drop_path_rates)
        self.downsample_mlp = (
            DOWNSAMPLES[downsample](dim, out_dim) if out_dim else
            nn.Identity())


class _ToContiguousNCHW(torch.autograd.Function):
    """``x.contiguous()`` whose backward returns the gradient channels-last.

    A neck hands back contiguous NCHW gradients for the emitted levels. Added
    as they are to the trunk's channels-last gradient, they would make the sum
    NCHW, and every kernel upstream (max-pool, BatchNorm, convolution) would
    reorder it again; one conversion here, the mirror of the forward copy,
    keeps the backward pass in one layout."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


class _FrozenBatchNormStats:
    """Keep BatchNorm running statistics still while a checkpointed block is
    recomputed in the backward pass, so ``with_cp`` updates them exactly once
    per step, as without checkpointing. The recomputation must run the same
    ops as the first pass, so the buffers are restored afterwards rather than
    kept from updating."""

    def __init__(self, module: nn.Module):
        self.buffers = [b for m in module.modules() if isinstance(m, _BatchNorm)
                        for b in m.buffers()]

    def __enter__(self):
        self.saved = [b.clone() for b in self.buffers]

    def __exit__(self, *exc):
        with torch.no_grad():
            for buffer, saved in zip(self.buffers, self.saved):
                buffer.copy_(saved)


def _unknown_arguments_message(unknown: dict) -> str:
    """Name each unknown argument of a config's backbone dict, with the
    closest real one: Python's own error names only the first and suggests
    nothing."""
    known = [name for name in inspect.signature(ConvMLP).parameters
             if name != 'unknown']
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f'"{name}"' + (f' (did you mean "{close[0]}"?)'
                                    if close else ''))
    return (f'ConvMLP got unknown argument(s) {", ".join(parts)}; it takes '
            f'{", ".join(known)}.')


class ConvMLP(BaseModule):
    """ConvMLP backbone emitting four pyramid levels at strides 4, 8, 16, 32.

    The levels are the original release's taps: the tokenizer (C1), the conv
    stage after its downsample (C2), the first Conv-MLP stage after its
    downsample (C3) and the last Conv-MLP stage (C4). The second Conv-MLP
    stage is not tapped: its output has the same stride as the last stage's.

    Args:
        arch: ``'s'``, ``'m'``, ``'l'`` (or ``'small'``, ``'medium'``,
            ``'large'``), or a dict with the keys of :data:`ARCH_ZOO` entries.
        in_channels: Channels of the input image.
        drop_path_rate: Largest stochastic-depth rate. The default, 0.1 with
            ``drop_path_schedule='per_stage'``, is the original release's:
            the rate rises linearly from 0 to 0.1 inside each Conv-MLP stage.
            ``'global'`` spreads it over all Conv-MLP blocks in order, as
            mmpretrain backbones do.
        drop_path_schedule: ``'per_stage'`` or ``'global'``.
        out_indices: Levels to emit, 0-3 (negative counts from the end).
        frozen_stages: -1 freezes nothing, 0 the tokenizer, 1 also the conv
            stage, 2-4 also the Conv-MLP stages up to that one.
        norm_eval: Keep BatchNorm layers in eval mode while training.
        norm_cfg: Norm layer of the tokenizer and conv stage (use
            ``dict(type='SyncBN')`` for distributed training).
        with_cp: Activation checkpointing per block: less memory, same
            results, one extra forward per block in the backward pass.
        conv_stage: Ablation switch (paper Table 2). ``False`` replaces the
            conv stage by the Pure-MLP baseline's first stage: as many
            channel-MLP blocks (no depthwise conv) at width C1, then the
            downsample chosen by ``downsample`` to C2.
        downsample: ``'conv'`` (3x3 stride-2 conv, ConvMLP) or
            ``'patch_merging'`` (Swin's linear patch merging, the Pure-MLP
            baseline) between Conv-MLP stages. The conv stage keeps its conv.
        dwconv: ``False`` drops the 3x3 depthwise conv (and its LayerNorm)
            between the two channel MLPs of every block. All three switches
            off give the paper's Pure-MLP baseline; the defaults are ConvMLP
            and keep the official checkpoint's parameter names.
        pretrained: Deprecated, use ``init_cfg=dict(type='Pretrained',
            checkpoint=...)``; mmseg's EncoderDecoder still passes it.
        init_cfg: mmengine init config. ``type='Pretrained'`` loads an
            official ImageNet checkpoint strictly (see
            :func:`convmlp_mm.checkpoint.load_backbone_checkpoint`).
    """

    def __init__(self,
                 arch: Union[str, dict] = 's',
                 in_channels: int = 3,
                 drop_path_rate: float = 0.1,
                 drop_path_schedule: str = 'per_stage',
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 with_cp: bool = False,
                 conv_stage: bool = True,
                 downsample: str = 'conv',
                 dwconv: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **unknown):
        if unknown:
            raise TypeError(_unknown_arguments_message(unknown))
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError(
                    'ConvMLP got both "pretrained" and "init_cfg"; keep only '
                    'init_cfg=dict(type="Pretrained", checkpoint=...).')
            warnings.warn(
                'ConvMLP "pretrained" is deprecated, use '
                'init_cfg=dict(type="Pretrained", checkpoint=...).',
                DeprecationWarning)
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        if init_cfg is None:
            # The original release's initialisation.
            init_cfg = [
                dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
                dict(type='Kaiming', layer='Conv2d', mode='fan_out',
                     nonlinearity='relu', distribution='normal'),
                dict(type='Constant', layer=['LayerNorm', '_BatchNorm'],
                     val=1., bias=0.),
            ]
        super().__init__(init_cfg=init_cfg)

        self.arch_settings = resolve_arch(arch)
        channels = self.arch_settings['channels']
        dims = self.arch_settings['dims']
        blocks = self.arch_settings['blocks']
        mlp_ratio = self.arch_settings['mlp_ratio']

        self.in_channels = in_channels
        self.out_indices = self._check_out_indices(out_indices)
        if not -1 <= frozen_stages < NUM_STAGES:
            raise ValueError(
                f'ConvMLP frozen_stages must be in -1..{NUM_STAGES - 1} '
                f'(-1 freezes nothing), got {frozen_stages}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.out_channels = [channels] + list(dims[:2]) + [dims[2]]
        if downsample not in DOWNSAMPLES:
            raise ValueError(
                f'ConvMLP downsample must be one of '
                f'{", ".join(DOWNSAMPLES)}, got "{downsample}".')
        self.conv_stage = conv_stage
        # Without the conv stage its blocks become channel-MLP blocks, which
        # take part in stochastic depth like the other MLP stages.
        depths = list(blocks) if conv_stage else \
            [self.arch_settings['conv_blocks']] + list(blocks)

        if drop_path_schedule == 'per_stage':
            dprs = [torch.linspace(0, drop_path_rate, n).tolist()
                    for n in depths]
        elif drop_path_schedule == 'global':
            flat = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
            dprs = [flat[sum(depths[:i]):sum(depths[:i + 1])]
                    for i in range(len(depths))]
        else:
            raise ValueError(
                f'ConvMLP drop_path_schedule must be "per_stage" or "global", '
                f'got "{drop_path_schedule}".')

        self.tokenizer = ConvTokenizer(in_channels, channels, norm_cfg)
        if conv_stage:
            self.conv_stages = ConvStage(self.arch_settings['conv_blocks'],
                                         channels, dims[0], dims[0], norm_cfg)
        else:
            self.mlp_stage = ConvMLPStage(
                self.arch_settings['conv_blocks'], channels, dims[0],
                mlp_ratio, dprs.pop(0), downsample, dwconv=False)
        self.stages = nn.ModuleList(
            ConvMLPStage(blocks[i], dims[i],
                         dims[i + 1] if i + 1 < len(blocks) else None,
                         mlp_ratio, dprs[i], downsample, dwconv)
            for i in range(len(blocks)))
        # Channels-last convolution weights: in the default layout oneDNN
        # reorders each weight (and its gradient back) on every call.
        # Initialisation, load_state_dict and .to(device) keep this layout.
        self.to(memory_format=torch.channels_last)
        self._freeze_stages()

    @staticmethod
    def _check_out_indices(out_indices: Sequence[int]) -> List[int]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        result = []
        for index in out_indices:
            if not isinstance(index, int) or not -NUM_LEVELS <= index < NUM_LEVELS:
                raise ValueError(
                    f'ConvMLP out_indices entries must be integers in 0..3 '
                    f'(or -4..-1), got {index!r} in {list(out_indices)}.')
            result.append(index % NUM_LEVELS)
        if not result:
            raise ValueError('ConvMLP out_indices is empty; pick levels 0..3.')
        return sorted(set(result))

    def _stage_modules(self) -> List[nn.Module]:
        first = self.conv_stages if self.conv_stage else self.mlp_stage
        return [self.tokenizer, first, *self.stages]

    def _freeze_stages(self) -> None:
        for module in self._stage_modules()[:self.frozen_stages + 1]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'ConvMLP':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def init_weights(self) -> None:
        if isinstance(self.init_cfg, dict) and \
                self.init_cfg.get('type') == 'Pretrained':
            # mmengine's PretrainedInit loads with strict=False and only warns;
            # a checkpoint that does not fit must stop the run instead.
            cfg = dict(self.init_cfg)
            if 'checkpoint' not in cfg:
                raise ValueError(
                    'ConvMLP init_cfg type "Pretrained" needs a "checkpoint" '
                    '(a path or URL).')
            load_backbone_checkpoint(self, cfg['checkpoint'],
                                     prefix=cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()

    def _run(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # Non-reentrant checkpointing also works when only the parameters
        # need grad, as for the tokenizer, whose input is the image and whose
        # stride-2 activations are the largest in the network.
        if not (self.with_cp and torch.is_grad_enabled()) or not (
                x.requires_grad or
                any(p.requires_grad for p in block.parameters())):
            return block(x)
        calls = []

        def forward(inp: torch.Tensor) -> torch.Tensor:
            calls.append(None)
            if len(calls) == 1:
                return block(inp)
            with _FrozenBatchNormStats(block):
                return block(inp)

        return cp.checkpoint(forward, x, use_reentrant=False)

    def forward(self, x: torch.Tensor) -> tuple:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'ConvMLP expects NCHW input with {self.in_channels} channels '
                f'(in_channels={self.in_channels}), got shape '
                f'{tuple(x.shape)}; convert the images or set in_channels.')
        outs = []
        x = x.contiguous(memory_format=torch.channels_last)
        if self.with_cp:
            # Its stride-2 activations are the largest in the network: one
            # checkpoint per conv-BN-ReLU keeps just one of them alive while
            # the backward pass recomputes.
            for i in range(0, len(self.tokenizer.block), 3):
                x = self._run(self.tokenizer.block[i:i + 3], x)
        else:
            x = self.tokenizer(x)
        outs.append(x)

        if self.conv_stage:
            for block in self.conv_stages.conv_blocks:
                x = x + self._run(block, x)
            x = self.conv_stages.downsample(x)
        else:
            x = x.permute(0, 2, 3, 1)
            for block in self.mlp_stage.blocks:
                x = self._run(block, x)
            x = self.mlp_stage.downsample_mlp(x).permute(0, 3, 1, 2)
        outs.append(x)

        x = x.permute(0, 2, 3, 1)  # NHWC view of channels-last memory
        for i, stage in enumerate(self.stages):
            for block in stage.blocks:
                x = self._run(block, x)
            x = stage.downsample_mlp(x)
            if i == 0 or i == len(self.stages) - 1:
                outs.append(x.permute(0, 3, 1, 2))

        # Necks and heads (and mmcv ops such as RoIAlign) expect plain NCHW
        # tensors; this is the one layout conversion, and only for the levels
        # asked for.
        return tuple(_ToContiguousNCHW.apply(outs[i]) for i in self.out_indices)
