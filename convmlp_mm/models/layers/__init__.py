"""The layers of ConvMLP and the Pure-MLP baseline; the rest (bottleneck,
downsamplers, checkpointing, the CPU rule) is in the two modules."""
from convmlp_mm.models.layers.convmlp_layers import (
    DOWNSAMPLES,
    ChannelMLPBlock,
    ChannelMLPStem,
    ConvMLPBlock,
    ConvMLPStage,
    ConvStage,
    ConvTokenizer,
    Mlp,
    channel_mlps_as,
)
from convmlp_mm.models.layers.layout import (
    MLP_IMPLS,
    ToContiguousNCHW,
    auto_mlp_impl,
    channel_linear,
    cpu_info,
    describe_mlp_impl,
)

__all__ = [
    'DOWNSAMPLES', 'MLP_IMPLS', 'ChannelMLPBlock', 'ChannelMLPStem',
    'ConvMLPBlock', 'ConvMLPStage', 'ConvStage', 'ConvTokenizer', 'Mlp',
    'ToContiguousNCHW', 'auto_mlp_impl', 'channel_linear', 'channel_mlps_as',
    'cpu_info', 'describe_mlp_impl'
]
