"""ConvMLP backbone (Li et al., "ConvMLP: Hierarchical Convolutional MLPs for
Vision", arXiv 2109.04454) for mmdet 3 and mmsegmentation 1.

Module and parameter names follow the original release, so its ImageNet
checkpoints load without renaming any key (see
:mod:`convmlp_mm.models.official`). The blocks and stages live in
:mod:`convmlp_mm.models.layers.convmlp_layers`; arguments, freezing,
initialisation, the forward pass and the memory layout in
:mod:`convmlp_mm.models.backbones.base`. The paper's Pure-MLP baseline is
its own class, :class:`~convmlp_mm.models.backbones.pure_mlp.PureMLP`.
"""
from typing import Union

from convmlp_mm.models.backbones.base import ConvMLPBase
from convmlp_mm.models.layers.convmlp_layers import (
    ConvDownsample,
    ConvMLPBlock,
    ConvStage,
)


class ConvMLP(ConvMLPBase):
    """ConvMLP backbone emitting four pyramid levels at strides 4, 8, 16, 32.

    The levels are the original release's taps: the tokenizer (C1), the conv
    stage after its downsample (C2), the first Conv-MLP stage after its
    downsample (C3) and the last Conv-MLP stage (C4). The second Conv-MLP
    stage is not tapped: its output has the same stride as the last stage's.

    Modules: ``tokenizer`` (:class:`ConvTokenizer`), ``conv_stages``
    (:class:`ConvStage`) and ``stages``, three :class:`ConvMLPStage` of
    :class:`ConvMLPBlock` joined by :class:`ConvDownsample`; whatever the
    arguments.

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
        mlp_impl: How the channel MLPs compute their ``nn.Linear``:
            ``'auto'`` (default) as a 1x1 convolution in fp32 on AMD CPUs,
            where oneDNN was measured twice as fast as the BLAS (MKL), and
            ``F.linear`` everywhere else (Intel CPUs, autocast, GPUs);
            ``'linear'`` always ``F.linear``; ``'conv1x1'`` always the
            convolution. Parameters and results are the same (to
            float rounding); see :func:`convmlp_mm.models.layers.layout.
            channel_linear`. The first forward logs the path taken and why,
            in one line.
        pretrained: Deprecated, use ``init_cfg=dict(type='Pretrained',
            checkpoint=...)``; mmseg's EncoderDecoder still passes it.
        init_cfg: mmengine init config. ``type='Pretrained'`` loads an
            official ImageNet checkpoint strictly (see
            :func:`convmlp_mm.models.official.load_backbone_checkpoint`).
    """

    arguments_of_others = {
        name: ('is a switch of the paper\'s Table 2 ablation, which is '
               'type=\'PureMLP\' now (configs/pure_mlp/)')
        for name in ('conv_stage', 'downsample', 'dwconv')}

    def __init__(self, arch: Union[str, dict] = 's', **kwargs):
        super().__init__(arch, **kwargs)
        settings = self.arch_settings
        rates = self._drop_path_rates(settings['blocks'])
        self.tokenizer = self._tokenizer()
        self.conv_stages = ConvStage(settings['conv_blocks'],
                                     settings['channels'],
                                     settings['dims'][0],
                                     settings['dims'][0], self.norm_cfg,
                                     self.with_cp)
        self.stages = self._mlp_stages(ConvMLPBlock, ConvDownsample, rates)
        self._finish_init()
