"""The reference formulation the benchmark compares the default against."""
from typing import Sequence

import torch
import torch.nn as nn

from ..models import ConvMLP


class PlainConvMLP(ConvMLP):
    """ConvMLP as the original release computes it, for comparison only.

    Same modules and parameter names as :class:`ConvMLP` (it loads the same
    state dict); the forward keeps the tokenizer and conv stage in whatever
    layout the input has (NCHW normally) and, in the Conv-MLP stages, makes a
    contiguous NCHW copy before and a contiguous NHWC copy after every
    depthwise and downsampling conv, as the release's ``permute`` calls
    followed by contiguous kernels do. Its convolution weights are contiguous
    NCHW and its channel MLPs are ``nn.Linear`` calls, as in the release.
    Not registered: not a backbone to use.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not (self.conv_stage and self.stages[0].blocks[0].dwconv):
            raise ValueError('PlainConvMLP reproduces the default ConvMLP '
                             'only; turn the ablation switches off.')
        self.to(memory_format=torch.contiguous_format)

    def forward(self, x: torch.Tensor) -> tuple:
        outs = [self.tokenizer(x)]
        x = outs[0]
        for block in self.conv_stages.conv_blocks:
            x = block(x)  # the residual is inside the block
        x = self.conv_stages.downsample(x)
        outs.append(x)
        x = x.permute(0, 2, 3, 1).contiguous()
        for i, stage in enumerate(self.stages):
            for blk in stage.blocks:
                x = x + blk.drop_path(linear_mlp(blk.channel_mlp1,
                                                 blk.norm1(x)))
                y = blk.connect_norm(x).permute(0, 3, 1, 2).contiguous()
                x = blk.connect(y).permute(0, 2, 3, 1).contiguous()
                x = x + blk.drop_path(linear_mlp(blk.channel_mlp2,
                                                 blk.norm2(x)))
            if not isinstance(stage.downsample_mlp, nn.Identity):
                y = x.permute(0, 3, 1, 2).contiguous()
                x = stage.downsample_mlp.downsample(y)
                x = x.permute(0, 2, 3, 1).contiguous()
            if i == 0 or i == len(self.stages) - 1:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return tuple(outs[i].contiguous() for i in self.out_indices)


def linear_mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The release's channel MLP: ``nn.Linear`` calls (the BLAS on CPU)."""
    return mlp.fc2(mlp.act(mlp.fc1(x)))


def make_plain(model: ConvMLP, **kwargs) -> PlainConvMLP:
    """A :class:`PlainConvMLP` of the same size holding ``model``'s weights
    (``kwargs``, e.g. ``drop_path_rate``, go to its constructor)."""
    plain = PlainConvMLP(arch=model.arch_settings,
                         in_channels=model.in_channels,
                         out_indices=model.out_indices, **kwargs)
    plain.load_state_dict(model.state_dict())
    return plain.to(next(model.parameters()).device)


def max_relative_difference(outs: Sequence[torch.Tensor],
                            refs: Sequence[torch.Tensor]) -> float:
    """Largest ``max|a - b| / max|b|`` over the pyramid levels."""
    return max(float((a.float() - b.float()).abs().max() /
                     b.float().abs().max().clamp_min(1e-12))
               for a, b in zip(outs, refs))
