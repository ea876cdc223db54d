"""Whole-model checkpoints, loaded strictly and explained: the one place.

mmengine's Runner (``load_from``, ``--resume``, ``tools/test.py``) and the
inferencers load with ``strict=False``: a checkpoint of another size, of the
other task or of the backbone only logs a warning in the middle of the log,
then the run reports mAP 0. Here every tensor of the model must come from
the checkpoint with its shape, every tensor of the checkpoint must have a
place, and all weights must be finite; otherwise one error says what does
not fit (counts, examples) and what the file looks like.

The order is: unwrap ``state_dict``, ``revise_keys`` (``module.``),
:func:`convmlp_mm.models.legacy.upgrade_state_dict` (older layouts), the fit
check (:mod:`convmlp_mm.checkpoint.fit`, with the guess below as its
advice), the finiteness check, ``load_state_dict``.

Fine-tuning from a checkpoint trained with another number of classes is an
opt-in: ``skip_mismatched_heads=True`` (``--cfg-options
load_from_skip_mismatched_heads=True`` for ``load_from``) leaves the head
tensors whose shape differs only in its first (class) dimension at their
initial values, and logs their names. Nothing else is ever skipped.
"""
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm.checkpoint import (
    check_finite,
    compare_state_dict,
    examples,
    extract_state_dict,
)
from convmlp_mm.models.legacy import upgrade_state_dict
from convmlp_mm.models.official import guess_arch

# The config key for the opt-in (read by ConvMLPRunner for ``load_from``).
SKIP_HEADS_OPTION = 'load_from_skip_mismatched_heads'
# Never skipped, even with the opt-in: no class count changes their shapes.
BODY_PREFIXES = ('backbone.', 'neck.', 'data_preprocessor.')
DET_HEADS = ('bbox_head.', 'rpn_head.', 'roi_head.')
SEG_HEADS = ('decode_head.', 'auxiliary_head.')
BACKBONE_ROOTS = ('tokenizer.', 'conv_stages.', 'stages.')
DEFAULT_REVISE_KEYS = ((r'^module\.', ''), )


def _task(keys) -> Optional[str]:
    if any(k.startswith(SEG_HEADS) for k in keys):
        return 'segmentation'
    if any(k.startswith(DET_HEADS) for k in keys):
        return 'detection'
    return None


def _sub(state: Mapping, prefix: str) -> Dict:
    return {k[len(prefix):]: v for k, v in state.items()
            if k.startswith(prefix)}


def _heads(keys) -> List[str]:
    return sorted({k.split('.')[0] for k in keys
                   if not k.startswith(BODY_PREFIXES)})


def describe_checkpoint(model_state: Mapping, state: Mapping,
                        head_mismatches: Sequence[str],
                        name: str = 'FILE') -> str:
    """A guess of what a checkpoint (``name``) that does not fit is, and
    what to do."""
    # --backbone-checkpoint, not --cfg-options model.backbone.init_cfg...:
    # the demo configs set init_cfg=None, which the latter cannot merge into.
    init_cfg = ('it initialises the backbone only, for training: '
                f'tools/train.py CONFIG --backbone-checkpoint {name}')
    if not any(k.startswith('backbone.') for k in state) and any(
            k.startswith(BACKBONE_ROOTS) for k in state):
        arch = guess_arch(state)
        size = f'ConvMLP-{arch.upper()} ' if arch else 'ConvMLP '
        if any(k.startswith(('head.', 'norm.')) for k in state):
            return (f'It looks like an ImageNet classifier checkpoint '
                    f'({size}backbone plus norm.*/head.*, e.g. the release\'s '
                    f'convmlp_*_imagenet.pth): {init_cfg}.')
        return f'It looks like a {size}backbone-only checkpoint: {init_cfg}.'
    if all(k.startswith('backbone.') for k in state) and any(
            not k.startswith('backbone.') for k in model_state):
        arch = guess_arch(_sub(state, 'backbone.'))
        size = f'ConvMLP-{arch.upper()} ' if arch else ''
        return (f'It holds only {size}backbone tensors (backbone.*, e.g. '
                'from tools/model_converters/convmlp2mmdet.py --add-prefix): '
                f'{init_cfg}.')
    model_task, task = _task(model_state), _task(state)
    if model_task and task and model_task != task:
        return (f'It looks like a {task} checkpoint and this is a '
                f'{model_task} model: use it with a {task} config.')
    ours, theirs = _heads(model_state), _heads(state)
    if theirs and ours != theirs:
        return (f'It looks like a checkpoint of another model (parts '
                f'{", ".join(theirs)}; this model has {", ".join(ours)}): '
                'use it with the config it was trained with.')
    arch = guess_arch(_sub(state, 'backbone.'))
    model_arch = guess_arch(_sub(model_state, 'backbone.'))
    if arch and arch != model_arch:
        return (f'Its backbone looks like ConvMLP-{arch.upper()}'
                + (f' and this model\'s is ConvMLP-{model_arch.upper()}'
                   if model_arch else '') +
                f': use the config of ConvMLP-{arch.upper()} (or set '
                f'model.backbone.arch={arch}).')
    if head_mismatches:
        return ('It looks like a checkpoint trained with another number of '
                'classes. To fine-tune from it, opt in with --cfg-options '
                f'{SKIP_HEADS_OPTION}=True: the class layers '
                f'({examples(head_mismatches, 3)}) then keep their initial '
                'values.')
    return 'It was saved from a differently configured model.'


def _class_layer_mismatch(key: str, saved: torch.Tensor,
                          wanted: torch.Tensor) -> bool:
    """A head tensor whose shape differs in its first (class) dimension
    only."""
    return (not key.startswith(BODY_PREFIXES)
            and saved.dim() == wanted.dim() and saved.dim() >= 1
            and saved.shape[1:] == wanted.shape[1:]
            and saved.shape[0] != wanted.shape[0])


def prepare_model_state_dict(
    model: nn.Module,
    checkpoint,
    name: str,
    *,
    skip_mismatched_heads: bool = False,
    revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS,
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """The state dict to load into ``model``, checked; and the keys skipped
    with ``skip_mismatched_heads``. Raises
    :class:`~convmlp_mm.errors.CheckpointMismatchError` (the report of
    :mod:`convmlp_mm.checkpoint.fit`) or
    :class:`~convmlp_mm.errors.NonFiniteCheckpointError`."""
    state = extract_state_dict(checkpoint, name)
    for pattern, replacement in revise_keys:
        state = {re.sub(pattern, replacement, k): v for k, v in state.items()}
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    state = dict(upgrade_state_dict(state, meta or {}, model))
    fit = compare_state_dict(model, state)
    heads = [k for k in fit.mismatched
             if _class_layer_mismatch(k, state[k], fit.expected[k])]
    skipped: List[str] = []
    if skip_mismatched_heads and not fit.missing and not fit.unexpected \
            and len(heads) == len(fit.mismatched):
        skipped = heads
        state = {k: v for k, v in state.items() if k not in skipped}
    elif not fit.fits:
        note = (f' ({SKIP_HEADS_OPTION} skips only class layers, and this '
                'file differs elsewhere.)' if skip_mismatched_heads else '')
        raise fit.error(f'Checkpoint "{name}" does not fit this model',
                        describe_checkpoint(fit.expected, state, heads,
                                            name) +
                        note)
    check_finite(state, name)
    return state, skipped


def load_state_into_model(model: nn.Module, checkpoint, name: str,
                          **kwargs) -> List[str]:
    """Check ``checkpoint`` (already read) against ``model`` and load it;
    returns the keys skipped (see :func:`prepare_model_state_dict`)."""
    state, skipped = prepare_model_state_dict(model, checkpoint, name,
                                              **kwargs)
    result = model.load_state_dict(state, strict=not skipped)
    if skipped:
        assert sorted(result.missing_keys) == sorted(skipped), result
        print_log(
            f'{SKIP_HEADS_OPTION}: kept the initial values of {len(skipped)} '
            f'class-layer tensors whose shape differs in "{name}": '
            + ', '.join(skipped), logger='current', level=30)
    return skipped


def load_model_checkpoint(model: nn.Module,
                          filename: str,
                          *,
                          map_location='cpu',
                          skip_mismatched_heads: bool = False) -> dict:
    """Read ``filename`` (any ``CheckpointLoader`` scheme, weights only) and
    load it into ``model`` strictly; returns the checkpoint."""
    checkpoint = CheckpointLoader.load_checkpoint(filename,
                                                  map_location=map_location)
    load_state_into_model(model, checkpoint, filename,
                          skip_mismatched_heads=skip_mismatched_heads)
    return checkpoint


def strict_inferencer(inferencer_cls: type, name: str) -> type:
    """A subclass of an mmengine ``BaseInferencer`` (``DetInferencer``,
    ``MMSegInferencer``) that loads its ``weights`` through
    :func:`prepare_model_state_dict`; ``name`` names the file in errors."""

    def _load_weights_to_model(self, model, checkpoint, cfg):
        if checkpoint is not None:
            state, _ = prepare_model_state_dict(model, checkpoint, name)
            model.load_state_dict(state, strict=True)
            # The base class reads the meta (class names, palette) and
            # loads the same, already checked, tensors once more.
            checkpoint = dict(checkpoint, state_dict=state)
        inferencer_cls._load_weights_to_model(self, model, checkpoint, cfg)

    return type(inferencer_cls.__name__, (inferencer_cls, ),
                {'_load_weights_to_model': _load_weights_to_model})
