"""ConvMLP backbone (Li et al., "ConvMLP: Hierarchical Convolutional MLPs for
Vision", arXiv 2109.04454) for mmdet 3 and mmsegmentation 1.

Module and parameter names follow the original release, so its ImageNet
checkpoints load without renaming any key (see
:mod:`convmlp_mm.models.official`). The blocks and stages live in
:mod:`convmlp_mm.models.layers.convmlp_layers`.

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
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from convmlp_mm.models.arch_zoo import NUM_LEVELS, NUM_STAGES, resolve_arch
from convmlp_mm.models.official import load_backbone_checkpoint
from convmlp_mm.models.layers.convmlp_layers import (
    DOWNSAMPLES,
    ConvMLPStage,
    ConvStage,
    ConvTokenizer,
)
from convmlp_mm.models.layers.layout import MLP_IMPLS, ToContiguousNCHW


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
        mlp_impl: How the channel MLPs compute their ``nn.Linear``:
            ``'auto'`` (default) as a 1x1 convolution in fp32 on AMD CPUs,
            where oneDNN was measured twice as fast as the BLAS (MKL), and
            ``F.linear`` everywhere else (Intel CPUs, autocast, GPUs);
            ``'linear'`` always ``F.linear``; ``'conv1x1'`` always the
            convolution. Parameters and results are the same (to
            float rounding); see :func:`convmlp_mm.models.layers.layout.
            channel_linear`.
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
            :func:`convmlp_mm.models.official.load_backbone_checkpoint`).
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
                 mlp_impl: str = 'auto',
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
                # Users rarely write pretrained themselves: mmseg's
                # EncoderDecoder pushes the segmentor-level one down.
                raise ValueError(
                    'ConvMLP got both "pretrained" and "init_cfg" '
                    f'(pretrained={pretrained!r}). Under an mmseg:: base '
                    'config the pretrained comes from the segmentor-level '
                    'model.pretrained the base sets, which mmseg\'s '
                    'EncoderDecoder copies into the backbone: set '
                    'model.pretrained=None in your config (or --cfg-options '
                    'model.pretrained=None) and keep only '
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

        # Out of range, these build fine and fail later as a NaN loss that
        # looks like a learning-rate problem.
        if isinstance(drop_path_rate, bool) or not isinstance(
                drop_path_rate, (int, float)) or \
                not 0 <= drop_path_rate < 1:
            raise ValueError(
                f'ConvMLP drop_path_rate must be a number in [0, 1) (the '
                f'chance of dropping a block; 0.1 in the paper), got '
                f'{drop_path_rate!r}.')
        if isinstance(in_channels, bool) or not isinstance(
                in_channels, int) or in_channels < 1:
            raise ValueError(
                f'ConvMLP in_channels must be a positive integer (3 for RGB '
                f'images), got {in_channels!r}.')
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
        if mlp_impl not in MLP_IMPLS:
            raise ValueError(
                f'ConvMLP mlp_impl must be one of {", ".join(MLP_IMPLS)}, '
                f'got "{mlp_impl}".')
        self.mlp_impl = mlp_impl
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

        self.tokenizer = ConvTokenizer(in_channels, channels, norm_cfg,
                                       with_cp)
        if conv_stage:
            self.conv_stages = ConvStage(self.arch_settings['conv_blocks'],
                                         channels, dims[0], dims[0], norm_cfg,
                                         with_cp)
        else:
            self.mlp_stage = ConvMLPStage(
                self.arch_settings['conv_blocks'], channels, dims[0],
                mlp_ratio, dprs.pop(0), downsample, dwconv=False,
                mlp_impl=mlp_impl, with_cp=with_cp)
        self.stages = nn.ModuleList(
            ConvMLPStage(blocks[i], dims[i],
                         dims[i + 1] if i + 1 < len(blocks) else None,
                         mlp_ratio, dprs[i], downsample, dwconv, mlp_impl,
                         with_cp)
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
            if not isinstance(index, int) or \
                    not -NUM_LEVELS <= index < NUM_LEVELS:
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

    def forward(self, x: torch.Tensor) -> tuple:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'ConvMLP expects NCHW input with {self.in_channels} channels '
                f'(in_channels={self.in_channels}), got shape '
                f'{tuple(x.shape)}; convert the images or set in_channels.')
        x = self.tokenizer(x.contiguous(memory_format=torch.channels_last))
        outs = [x]
        if self.conv_stage:
            x = self.conv_stages(x)
        else:
            x = self.mlp_stage(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        outs.append(x)

        x = x.permute(0, 2, 3, 1)  # NHWC view of channels-last memory
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == 0 or i == len(self.stages) - 1:
                outs.append(x.permute(0, 3, 1, 2))

        # Necks and heads (and mmcv ops such as RoIAlign) expect plain NCHW
        # tensors; this is the one layout conversion, and only for the levels
        # asked for.
        return tuple(ToContiguousNCHW.apply(outs[i]) for i in self.out_indices)
