from convmlp_mm.models.layers.convmlp_layers import (
                             DOWNSAMPLES,
                             ConvBottleneck,
                             ConvDownsample,
                             ConvMLPBlock,
                             ConvMLPStage,
                             ConvStage,
                             ConvTokenizer,
                             Mlp,
                             PatchMergingDownsample,
)
from convmlp_mm.models.layers.layout import (
                             MLP_IMPLS,
                             ToContiguousNCHW,
                             channel_linear,
                             checkpoint_forward,
)

__all__ = [
    'DOWNSAMPLES', 'MLP_IMPLS', 'ConvBottleneck', 'ConvDownsample',
    'ConvMLPBlock', 'ConvMLPStage', 'ConvStage', 'ConvTokenizer', 'Mlp',
    'PatchMergingDownsample', 'ToContiguousNCHW', 'channel_linear',
    'checkpoint_forward'
]
