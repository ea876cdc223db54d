"""What the ConvMLP backbone and the Pure-MLP baseline share: arguments and
their checks, the stochastic-depth schedule, freezing, initialisation
(strict ImageNet loading) and the forward pass over their stages.

Memory layout: the network runs channels-last throughout. The tokenizer and
the first stage take an NCHW-shaped tensor with channels-last strides; the
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
from typing import List, Optional, Sequence, Set, Tuple, Type, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from convmlp_mm.models.arch_zoo import NUM_LEVELS, NUM_STAGES, resolve_arch
from convmlp_mm.models.layers.convmlp_layers import (
    ChannelMLPBlock,
    ConvMLPStage,
    ConvTokenizer,
)
from convmlp_mm.models.layers.layout import (
    MLP_IMPLS,
    ToContiguousNCHW,
    describe_mlp_impl,
)
from convmlp_mm.models.official import load_backbone_checkpoint

# (logger, line) pairs already logged: a run's log names the channel MLPs'
# path once, however many backbones the process builds.
_LOGGED: Set[Tuple[str, str]] = set()


def _log_once(line: str) -> None:
    key = (MMLogger.get_current_instance().instance_name, line)
    if key not in _LOGGED:
        _LOGGED.add(key)
        print_log(line, logger='current')


class ConvMLPBase(BaseModule):
    """The part of :class:`~convmlp_mm.models.ConvMLP` and
    :class:`~convmlp_mm.models.PureMLP` that does not depend on their layers
    (see :class:`~convmlp_mm.models.ConvMLP` for the arguments). Not
    registered: a subclass builds ``tokenizer``, its first stage (named by
    :attr:`first_stage_name`) and ``stages`` in its ``__init__`` after this
    one, then calls :meth:`_finish_init`.
    """

    #: Attribute name of the stage between the tokenizer and the Conv-MLP
    #: stages (its checkpoint keys start with it).
    first_stage_name = 'conv_stages'
    #: Arguments of another backbone, named in the error when given here.
    arguments_of_others: dict = {}

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
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 **unknown):
        name = type(self).__name__
        if unknown:
            raise TypeError(self._unknown_arguments_message(unknown))
        if pretrained is not None:
            if init_cfg is not None:
                # Users rarely write pretrained themselves: mmseg's
                # EncoderDecoder pushes the segmentor-level one down.
                raise ValueError(
                    f'{name} got both "pretrained" and "init_cfg" '
                    f'(pretrained={pretrained!r}). Under an mmseg:: base '
                    'config the pretrained comes from the segmentor-level '
                    'model.pretrained the base sets, which mmseg\'s '
                    'EncoderDecoder copies into the backbone: set '
                    'model.pretrained=None in your config (or --cfg-options '
                    'model.pretrained=None) and keep only '
                    'init_cfg=dict(type="Pretrained", checkpoint=...).')
            warnings.warn(
                f'{name} "pretrained" is deprecated, use '
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

        # Out of range, these build fine and fail later as a NaN loss that
        # looks like a learning-rate problem.
        if isinstance(drop_path_rate, bool) or not isinstance(
                drop_path_rate, (int, float)) or \
                not 0 <= drop_path_rate < 1:
            raise ValueError(
                f'{name} drop_path_rate must be a number in [0, 1) (the '
                f'chance of dropping a block; 0.1 in the paper), got '
                f'{drop_path_rate!r}.')
        if isinstance(in_channels, bool) or not isinstance(
                in_channels, int) or in_channels < 1:
            raise ValueError(
                f'{name} in_channels must be a positive integer (3 for RGB '
                f'images), got {in_channels!r}.')
        self.in_channels = in_channels
        self.out_indices = self._check_out_indices(out_indices)
        if not -1 <= frozen_stages < NUM_STAGES:
            raise ValueError(
                f'{name} frozen_stages must be in -1..{NUM_STAGES - 1} '
                f'(-1 freezes nothing), got {frozen_stages}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.norm_cfg = self._check_norm_cfg(norm_cfg)
        self.with_cp = with_cp
        self.out_channels = [channels] + list(dims[:2]) + [dims[2]]
        if mlp_impl not in MLP_IMPLS:
            raise ValueError(
                f'{name} mlp_impl must be one of {", ".join(MLP_IMPLS)}, '
                f'got "{mlp_impl}".')
        self.mlp_impl = mlp_impl
        if drop_path_schedule not in ('per_stage', 'global'):
            raise ValueError(
                f'{name} drop_path_schedule must be "per_stage" or '
                f'"global", got "{drop_path_schedule}".')
        self.drop_path_rate = drop_path_rate
        self.drop_path_schedule = drop_path_schedule
        # The run's log names the channel MLPs' path at the first forward,
        # when the input's device and dtype are known.
        self._mlp_path_logged = False
        self.register_forward_pre_hook(self._log_mlp_path)

    @classmethod
    def _unknown_arguments_message(cls, unknown: dict) -> str:
        """Name each unknown argument of a config's backbone dict, with the
        closest real one: Python's own error names only the first and
        suggests nothing."""
        known = []
        for klass in reversed(cls.__mro__):
            if issubclass(klass, ConvMLPBase) and '__init__' in vars(klass):
                known += [
                    p.name for p in inspect.signature(
                        klass.__init__).parameters.values()
                    if p.kind == p.POSITIONAL_OR_KEYWORD and
                    p.name != 'self' and p.name not in known]
        parts = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            parts.append(f'"{name}"' + (f' (did you mean "{close[0]}"?)'
                                        if close else ''))
        message = (f'{cls.__name__} got unknown argument(s) '
                   f'{", ".join(parts)}; it takes {", ".join(known)}.')
        for name in unknown:
            if name in cls.arguments_of_others:
                message += f' "{name}" {cls.arguments_of_others[name]}.'
        return message

    @classmethod
    def _check_norm_cfg(cls, norm_cfg: dict) -> dict:
        # mmcv's build_norm_layer asserts num_groups with no message.
        if isinstance(norm_cfg, dict) and norm_cfg.get('type') == 'GN':
            groups = norm_cfg.get('num_groups')
            if isinstance(groups, bool) or not isinstance(groups, int) or \
                    groups < 1:
                raise ValueError(
                    f'{cls.__name__} norm_cfg type GN (GroupNorm) needs '
                    f'num_groups, a positive integer dividing every width '
                    f'(got {groups!r}); add it, e.g. --cfg-options '
                    'model.backbone.norm_cfg.num_groups=8.')
        return norm_cfg

    @classmethod
    def _check_out_indices(cls, out_indices: Sequence[int]) -> List[int]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        result = []
        for index in out_indices:
            if not isinstance(index, int) or \
                    not -NUM_LEVELS <= index < NUM_LEVELS:
                raise ValueError(
                    f'{cls.__name__} out_indices entries must be integers in '
                    f'0..3 '
                    f'(or -4..-1), got {index!r} in {list(out_indices)}.')
            result.append(index % NUM_LEVELS)
        if not result:
            raise ValueError(
                f'{cls.__name__} out_indices is empty; pick levels 0..3.')
        return sorted(set(result))

    def _drop_path_rates(self, depths: Sequence[int]) -> List[List[float]]:
        """Stochastic-depth rates of each channel-MLP stage of ``depths``
        blocks: rising from 0 to ``drop_path_rate`` inside each stage
        (``'per_stage'``, the release's) or over all of them in order
        (``'global'``, as mmpretrain backbones do)."""
        rate = self.drop_path_rate
        if self.drop_path_schedule == 'per_stage':
            return [torch.linspace(0, rate, n, device='cpu').tolist()
                    for n in depths]
        flat = torch.linspace(0, rate, sum(depths), device='cpu').tolist()
        return [flat[sum(depths[:i]):sum(depths[:i + 1])]
                for i in range(len(depths))]

    def _tokenizer(self) -> ConvTokenizer:
        return ConvTokenizer(self.in_channels, self.arch_settings['channels'],
                             self.norm_cfg, self.with_cp)

    def _mlp_stages(self, block: Type[ChannelMLPBlock],
                    downsample: Type[nn.Module],
                    rates: Sequence[Sequence[float]]) -> nn.ModuleList:
        """The three Conv-MLP stages of the arch, of ``block`` modules, the
        first two ending in ``downsample``."""
        blocks = self.arch_settings['blocks']
        dims = self.arch_settings['dims']
        return nn.ModuleList(
            ConvMLPStage(blocks[i], dims[i],
                         dims[i + 1] if i + 1 < len(blocks) else None,
                         self.arch_settings['mlp_ratio'], rates[i], block,
                         downsample, self.mlp_impl, self.with_cp)
            for i in range(len(blocks)))

    def _finish_init(self) -> None:
        # Channels-last convolution weights: in the default layout oneDNN
        # reorders each weight (and its gradient back) on every call.
        # Initialisation, load_state_dict and .to(device) keep this layout.
        self.to(memory_format=torch.channels_last)
        self._freeze_stages()

    def _log_mlp_path(self, module: nn.Module, args: tuple) -> None:
        if self._mlp_path_logged or torch.compiler.is_compiling() or \
                not args or not isinstance(args[0], torch.Tensor):
            return
        self._mlp_path_logged = True
        _log_once(f'{type(self).__name__} '
                  f'{describe_mlp_impl(self.mlp_impl, args[0])}')

    def _stage_modules(self) -> List[nn.Module]:
        return [self.tokenizer, getattr(self, self.first_stage_name),
                *self.stages]

    def _freeze_stages(self) -> None:
        for module in self._stage_modules()[:self.frozen_stages + 1]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'ConvMLPBase':
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
                    f'{type(self).__name__} init_cfg type "Pretrained" needs '
                    'a "checkpoint" (a path or URL).')
            load_backbone_checkpoint(self, cfg['checkpoint'],
                                     prefix=cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()

    def forward(self, x: torch.Tensor) -> tuple:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects NCHW input with '
                f'{self.in_channels} channels (in_channels='
                f'{self.in_channels}), got shape {tuple(x.shape)}; convert '
                'the images or set in_channels.')
        x = self.tokenizer(x.contiguous(memory_format=torch.channels_last))
        outs = [x]
        x = getattr(self, self.first_stage_name)(x)
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
