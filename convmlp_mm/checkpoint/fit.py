"""Does this state dict fit the model? The one report, for every loader.

The backbone's ImageNet weights (``ConvMLP.init_weights``), whole-model
checkpoints (``load_from``, ``--resume``, ``tools/test.py``, inference) and
the model converters all compare a state dict with a module's through
:func:`compare_state_dict` and raise the one
:class:`~convmlp_mm.errors.CheckpointMismatchError` it builds: every key
missing, unexpected or of another shape, counted, with examples. What a
file that does not fit probably is (another ConvMLP size, the other task)
is the caller's advice, appended to the same line.

Also here, because every loader needs them: unwrapping a checkpoint to its
state dict (:func:`extract_state_dict`) and refusing non-finite weights
(:func:`check_finite`). Nothing here knows ConvMLP.
"""
from collections import OrderedDict
from typing import Dict, List, Mapping, NamedTuple, Sequence, Union

import torch
import torch.nn as nn

from convmlp_mm.errors import CheckpointMismatchError, NonFiniteCheckpointError

# Containers that training frameworks wrap a state dict in.
WRAPPER_KEYS = ('state_dict', 'model')


def examples(items: Sequence[str], limit: int = 5) -> str:
    """``a, b, c, ... (N more)``: the first ``limit`` of ``items``."""
    more = f', ... ({len(items) - limit} more)' if len(items) > limit else ''
    return ', '.join(items[:limit]) + more


def extract_state_dict(checkpoint,
                       name: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """The tensors of ``checkpoint``: a plain state dict, or one wrapped in
    ``{'state_dict': ...}`` / ``{'model': ...}`` (nested, as an mmengine
    checkpoint of a wrapped model is). Raises
    :class:`~convmlp_mm.errors.CheckpointMismatchError` naming ``name``
    when there is no state dict of tensors."""
    state = checkpoint
    for _ in range(3):
        inner = next((state[k] for k in WRAPPER_KEYS
                      if isinstance(state.get(k), Mapping)),
                     None) if isinstance(state, Mapping) else None
        if inner is None:
            break
        state = inner
    if not isinstance(state, Mapping) or not state or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        keys = list(checkpoint)[:5] if isinstance(checkpoint, Mapping) \
            else []
        raise CheckpointMismatchError(
            f'Checkpoint "{name}" is not a state dict of tensors (nor one '
            f'wrapped in {" or ".join(WRAPPER_KEYS)}); got '
            f'{type(checkpoint).__name__} with keys {keys}. Pass a .pth '
            'saved by tools/train.py or a state dict '
            '(torch.save(model.state_dict(), path)).')
    return OrderedDict(state)


def non_finite_keys(state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    """Keys of the floating-point tensors holding a NaN or inf."""
    return [k for k, v in state_dict.items()
            if v.is_floating_point() and not bool(torch.isfinite(v).all())]


# Larger weights are a diverged run's, not a trained network's (trained
# ConvMLP, FPN and head weights stay within a few units); BatchNorm's
# running statistics follow the data's scale and are not judged.
LARGEST_SANE_WEIGHT = 1e6
RUNNING_STATISTICS = ('running_mean', 'running_var')


def oversized_keys(state_dict: Mapping[str, torch.Tensor],
                   limit: float = LARGEST_SANE_WEIGHT) -> List[str]:
    """Keys of the floating-point tensors (BatchNorm running statistics
    aside) holding a value above ``limit`` in magnitude."""
    return [k for k, v in state_dict.items()
            if v.is_floating_point() and v.numel() and
            not k.endswith(RUNNING_STATISTICS) and
            float(v.detach().abs().max()) > limit]


def check_finite(state_dict: Mapping[str, torch.Tensor], name: str) -> None:
    """Raise :class:`~convmlp_mm.errors.NonFiniteCheckpointError` naming
    ``name`` and how many tensors are not finite."""
    bad = non_finite_keys(state_dict)
    if bad:
        raise NonFiniteCheckpointError(
            f'Checkpoint "{name}" has non-finite weights: {len(bad)} of '
            f'{len(state_dict)} tensors hold NaN or inf (e.g. '
            f'{examples(bad, 3)}). The run had diverged when it was saved; '
            'use an earlier checkpoint (the non-finite stop names the last '
            'good one), or start again with a lower learning rate or '
            'gradient clipping (optim_wrapper.clip_grad).')


class StateDictFit(NamedTuple):
    """How a state dict fits a module's: the keys of the module it lacks,
    the keys the module has no place for, and the shared keys whose shapes
    differ (each list in its dict's order)."""
    expected: Mapping[str, torch.Tensor]
    state: Mapping[str, torch.Tensor]
    missing: List[str]
    unexpected: List[str]
    mismatched: List[str]

    @property
    def fits(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def shape(self, key: str) -> str:
        """``key: checkpoint (a, b) vs model (c, d)``."""
        return (f'{key}: checkpoint {tuple(self.state[key].shape)} vs model '
                f'{tuple(self.expected[key].shape)}')

    def describe(self) -> str:
        """Counts and examples of each kind of misfit, one line."""
        def count(keys):
            return f'{len(keys)} tensor' + (' has' if len(keys) == 1 else
                                            's have')

        parts = []
        if self.missing:
            parts.append(f'{len(self.missing)} of the model\'s '
                         f'{len(self.expected)} tensors '
                         f'{"is" if len(self.missing) == 1 else "are"} '
                         f'missing ({examples(self.missing)})')
        if self.unexpected:
            parts.append(f'{count(self.unexpected)} no '
                         f'place in the model ({examples(self.unexpected)})')
        if self.mismatched:
            shapes = [self.shape(k) for k in self.mismatched]
            parts.append(f'{count(self.mismatched)} '
                         f'another shape ({examples(shapes, 3)})')
        return '; '.join(parts)

    def error(self, headline: str, advice: str = '') -> \
            CheckpointMismatchError:
        """The error to raise: ``headline`` (e.g. ``Checkpoint "X" does not
        fit this model``), :meth:`describe`, then ``advice``."""
        return CheckpointMismatchError(
            f'{headline}: {self.describe()}.' + (f' {advice}' if advice
                                                 else ''))


def compare_state_dict(
        model: Union[nn.Module, Mapping[str, torch.Tensor]],
        state_dict: Mapping[str, torch.Tensor]) -> StateDictFit:
    """Compare ``state_dict`` with ``model``'s (a module or its state
    dict)."""
    expected = model.state_dict() if isinstance(model, nn.Module) else model
    return StateDictFit(
        expected=expected,
        state=state_dict,
        missing=[k for k in expected if k not in state_dict],
        unexpected=[k for k in state_dict if k not in expected],
        mismatched=[k for k in expected if k in state_dict and
                    state_dict[k].shape != expected[k].shape])


def check_state_dict_fits(model: Union[nn.Module, Mapping[str,
                                                          torch.Tensor]],
                          state_dict: Mapping[str, torch.Tensor],
                          headline: str,
                          advice: str = '') -> StateDictFit:
    """:func:`compare_state_dict`, raising its
    :class:`~convmlp_mm.errors.CheckpointMismatchError` when anything does
    not fit; returns the (fitting) report."""
    fit = compare_state_dict(model, state_dict)
    if not fit.fits:
        raise fit.error(headline, advice)
    return fit


__all__ = [
    'LARGEST_SANE_WEIGHT', 'StateDictFit', 'WRAPPER_KEYS', 'check_finite',
    'check_state_dict_fits', 'compare_state_dict', 'examples',
    'extract_state_dict', 'non_finite_keys', 'oversized_keys'
]
