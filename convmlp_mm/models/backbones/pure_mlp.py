"""The paper's Pure-MLP baseline (Li et al., arXiv 2109.04454, Table 2's
first row; the backbones of Tables 5-7), and Table 2's ablation rows.

ConvMLP with its three convolutions taken out: channel-MLP blocks in place
of the conv stage, Swin's linear patch merging in place of the stride-2
conv downsampling, no depthwise conv between the two channel MLPs. Same
levels and widths as :class:`~convmlp_mm.models.ConvMLP`, so necks and heads
are unchanged; no ImageNet weights of it were released.
"""
from typing import Union

from convmlp_mm.models.backbones.base import ConvMLPBase
from convmlp_mm.models.layers.convmlp_layers import (
    DOWNSAMPLES,
    ChannelMLPBlock,
    ChannelMLPStem,
    ConvMLPBlock,
    ConvStage,
)


class PureMLP(ConvMLPBase):
    """The Pure-MLP baseline backbone: four pyramid levels at strides 4, 8,
    16, 32, with :class:`~convmlp_mm.models.ConvMLP`'s widths.

    Modules: ``tokenizer`` (ConvMLP's convolutional tokenizer, which the
    paper keeps), ``mlp_stage`` (:class:`ChannelMLPStem`: as many
    :class:`ChannelMLPBlock` at width C1 as ConvMLP has conv blocks, then
    the downsample to C2; it takes part in stochastic depth) and ``stages``,
    three :class:`ConvMLPStage` of :class:`ChannelMLPBlock` joined by
    :class:`PatchMergingDownsample`.

    The three switches put ConvMLP's convolutions back one at a time, for
    the middle rows of the paper's Table 2 (docs/analysis_tools.md); each
    picks the class of a part when the model is built, and the forward pass
    is the same for all. All three on build ConvMLP's modules: use
    :class:`~convmlp_mm.models.ConvMLP` for that.

    Args:
        arch: As for ConvMLP.
        conv_stage: ``True`` puts ConvMLP's conv stage (``conv_stages``) in
            place of ``mlp_stage``.
        downsample: ``'patch_merging'`` (Swin's linear patch merging: 2x2
            concat, LayerNorm, bias-free Linear; mmcv's ``PatchMerging``)
            or ``'conv'`` (ConvMLP's 3x3 stride-2 conv), between the stages
            of channel-MLP blocks.
        dwconv: ``True`` adds ConvMLP's 3x3 depthwise conv (with its
            LayerNorm) between the two channel MLPs of the blocks of
            ``stages``.
        **kwargs: The other arguments of ConvMLP (``drop_path_rate``,
            ``out_indices``, ``frozen_stages``, ``mlp_impl``, ``init_cfg``,
            ...).
    """

    first_stage_name = 'mlp_stage'

    def __init__(self, arch: Union[str, dict] = 's',
                 conv_stage: bool = False,
                 downsample: str = 'patch_merging',
                 dwconv: bool = False, **kwargs):
        super().__init__(arch, **kwargs)
        if downsample not in DOWNSAMPLES:
            raise ValueError(
                f'PureMLP downsample must be one of '
                f'{", ".join(DOWNSAMPLES)}, got "{downsample}".')
        for name, value in (('conv_stage', conv_stage), ('dwconv', dwconv)):
            if not isinstance(value, bool):
                raise ValueError(f'PureMLP {name} must be True or False, '
                                 f'got {value!r}.')
        settings = self.arch_settings
        channels, dims = settings['channels'], settings['dims']
        depths = list(settings['blocks'])
        if not conv_stage:
            depths.insert(0, settings['conv_blocks'])
        rates = self._drop_path_rates(depths)
        self.tokenizer = self._tokenizer()
        if conv_stage:
            self.first_stage_name = 'conv_stages'
            self.conv_stages = ConvStage(settings['conv_blocks'], channels,
                                         dims[0], dims[0], self.norm_cfg,
                                         self.with_cp)
        else:
            self.mlp_stage = ChannelMLPStem(
                settings['conv_blocks'], channels, dims[0],
                settings['mlp_ratio'], rates.pop(0), ChannelMLPBlock,
                DOWNSAMPLES[downsample], self.mlp_impl, self.with_cp)
        self.stages = self._mlp_stages(
            ConvMLPBlock if dwconv else ChannelMLPBlock,
            DOWNSAMPLES[downsample], rates)
        self._finish_init()
