"""The reference the benchmark measures every speed-up against: ConvMLP as
the original release (SHI-Labs/Convolutional-MLPs, ``src/utils/modules.py``,
``src/detection/__init__.py``) computes it."""
from typing import Sequence

import torch
import torch.nn as nn

from convmlp_mm.models import ConvMLP

# The benchmark tables' name for it.
REFERENCE = "reference (the release's formulation)"


class ReleaseConvMLP(ConvMLP):
    """ConvMLP computed as the original release's modules compute it, for
    comparison only (not registered: not a backbone to use).

    Same modules and parameter names as :class:`ConvMLP` (it loads the same
    state dict), in PyTorch's default layouts: contiguous NCHW convolution
    weights, the tokenizer and conv stage on the input's contiguous NCHW
    tensor. The Conv-MLP stages work on the ``permute`` view of the conv
    stage's output: the depthwise and downsampling convolutions get
    ``permute`` views in and out (no copies), the channel MLPs are
    ``nn.Linear`` calls on the NHWC tensor, and stages 1 and 3 are emitted as
    ``permute(...).contiguous()``, the release's only copies.
    """

    def __init__(self, *args, **kwargs):
        # Its channel MLPs are nn.Linear calls whatever the CPU; mlp_impl
        # says so in the log line of the first forward.
        super().__init__(*args, **dict(kwargs, mlp_impl='linear'))
        if self.with_cp:
            raise ValueError('ReleaseConvMLP reproduces ConvMLP without '
                             'activation checkpointing only; turn with_cp '
                             'off.')
        self.to(memory_format=torch.contiguous_format)

    def forward(self, x: torch.Tensor) -> tuple:
        outs = [self.tokenizer.block(x)]
        x = outs[0]
        for block in self.conv_stages.conv_blocks:
            # the release's Sequential; our block adds the residual itself
            x = x + nn.Sequential.forward(block, x)
        x = self.conv_stages.downsample(x)
        outs.append(x)
        x = x.permute(0, 2, 3, 1)
        for i, stage in enumerate(self.stages):
            for blk in stage.blocks:
                x = x + blk.drop_path(linear_mlp(blk.channel_mlp1,
                                                 blk.norm1(x)))
                x = blk.connect(blk.connect_norm(x).permute(0, 3, 1, 2))
                x = x.permute(0, 2, 3, 1)
                x = x + blk.drop_path(linear_mlp(blk.channel_mlp2,
                                                 blk.norm2(x)))
            if not isinstance(stage.downsample_mlp, nn.Identity):
                conv = stage.downsample_mlp.downsample
                x = conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            if i != 1:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return tuple(outs[i] for i in self.out_indices)


def linear_mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The release's channel MLP: ``fc2(act(fc1(x)))`` with ``nn.Linear``."""
    return mlp.fc2(mlp.act(mlp.fc1(x)))


def make_reference(model: ConvMLP, **kwargs) -> ReleaseConvMLP:
    """A :class:`ReleaseConvMLP` of the same size holding ``model``'s weights
    (``kwargs``, e.g. ``drop_path_rate``, go to its constructor)."""
    ref = ReleaseConvMLP(arch=model.arch_settings,
                         in_channels=model.in_channels,
                         out_indices=model.out_indices, **kwargs)
    ref.load_state_dict(model.state_dict())
    return ref.to(next(model.parameters()).device)


def max_relative_difference(outs: Sequence, refs: Sequence) -> float:
    """Largest ``max|a - b| / max|b|`` over the outputs (tensors or numpy
    arrays, e.g. the pyramid levels of a backbone or ONNX Runtime's
    outputs against PyTorch's)."""
    diffs = []
    for a, b in zip(outs, refs):
        a = torch.as_tensor(a).detach().float().cpu()
        b = torch.as_tensor(b).detach().float().cpu()
        diffs.append(float((a - b).abs().max() /
                           b.abs().max().clamp_min(1e-12)))
    return max(diffs)
