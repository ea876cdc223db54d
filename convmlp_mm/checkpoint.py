"""Loading ConvMLP checkpoints safely and strictly.

Two concerns live here:

* Safety. Every checkpoint is unpickled with ``weights_only=True``. mmengine's
  ``CheckpointLoader`` already does so for local files under torch >= 2.6, but
  its ``http(s)://`` scheme goes through ``torch.hub.load_state_dict_from_url``,
  whose default is ``weights_only=False``. Importing ``convmlp_mm`` registers
  safe replacements for both schemes, so the backbone's ``init_cfg``, a
  config's ``load_from`` and ``--resume`` all load through the same door.
* Resuming. mmengine's own training checkpoints hold a ``HistoryBuffer``
  (numpy arrays and scalars) in their message hub. Exactly the classes that
  needs are allow-listed; the ``getattr`` its pickle calls is served by a
  stand-in that resolves only ``HistoryBuffer``'s statistics methods, and only
  inside our loader, because allow-listing ``builtins.getattr`` itself would
  let a pickle reach any attribute of any allowed object.
* Strictness. The original release loaded its ImageNet weights with
  ``strict=False`` and never called ``init_weights``, so a wrong file was
  silently ignored. Here every backbone tensor must be found with its shape;
  only the classifier's ``norm.*`` and ``head.*`` are dropped, with a log line.

The key conversion functions are pure, so they are tested and reused by
``tools/model_converters/convmlp2mmdet.py``.
"""
import contextlib
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlparse

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from .arch import ARCH_ZOO
from .fileio import partial_path, replace_atomically

# The classifier's final LayerNorm and linear head: not part of the backbone.
CLASSIFIER_PREFIXES = ('norm.', 'head.')
# Containers that training frameworks wrap a state dict in.
WRAPPER_KEYS = ('state_dict', 'model')
# Prefixes added by DDP/DataParallel and by mmdet/mmseg models.
STRIPPED_PREFIXES = ('module.', 'backbone.')


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read, or is not allowed to be."""


class CheckpointMismatchError(ValueError):
    """A checkpoint whose tensors do not fit the ConvMLP it is loaded into."""


# The statistics mmengine registers on HistoryBuffer; a checkpoint pickles
# them as getattr(HistoryBuffer, name) in the buffer's ``statistics_methods``.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistic(owner, name: str):
    """Stand-in for ``builtins.getattr`` while unpickling: resolves only
    ``HistoryBuffer.<statistic>``, refuses everything else."""
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: getattr({getattr(owner, "__name__", owner)!r}, '
        f'{name!r}); only HistoryBuffer statistics are allowed')


def mmengine_checkpoint_globals() -> List:
    """The classes (beyond torch's defaults) that an mmengine training
    checkpoint pickles: the message hub's ``HistoryBuffer`` and the numpy
    arrays and scalars inside it. Names written by numpy 1.x
    (``numpy.core``) map to the same functions, so checkpoints stay
    resumable across numpy versions."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:
        multiarray = np.core.multiarray
    allowed = [HistoryBuffer, np.ndarray, np.dtype]
    # A dtype object is rebuilt as an instance of its numeric dtype class
    # (numpy.dtypes.Float64DType, ...): numbers only, no object/void dtypes.
    allowed += sorted({type(np.dtype(code)) for code in
                       '?' + np.typecodes['AllInteger'] +
                       np.typecodes['AllFloat']} - {np.dtype},
                      key=lambda cls: cls.__name__)
    for function in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            allowed.append((function, f'{module}.{function.__name__}'))
    return allowed


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list :func:`mmengine_checkpoint_globals` for ``weights_only``
    loading (torch >= 2.5; older torch cannot resume under safe loading)."""
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


def _restricted_getattr():
    if hasattr(torch.serialization, 'safe_globals'):
        return torch.serialization.safe_globals(
            [(_history_buffer_statistic, 'builtins.getattr')])
    return contextlib.nullcontext()


def safe_torch_load(source, name: str, map_location='cpu'):
    """``torch.load`` with ``weights_only=True`` and errors that name the file.

    mmengine training checkpoints (``--resume``) load too: see
    :func:`mmengine_checkpoint_globals`.

    Args:
        source: A path or a binary file object.
        name: How to name the file in error messages (path or URL).
    """
    try:
        with _restricted_getattr():
            return torch.load(source, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as exc:
        operand = re.search(r'Unsupported operand [^\n]*', str(exc))
        if operand:  # not a pickle stream at all: text, an HTML page, ...
            raise CheckpointError(
                f'Could not read checkpoint "{name}": it is truncated, '
                f'corrupt or not a PyTorch checkpoint ({operand.group(0)}). '
                'Download or save it again.') from exc
        first_line = str(exc).strip().splitlines()[0] if str(exc) else ''
        # torch's own wording of what the pickle asked for, without the
        # boilerplate that suggests weights_only=False.
        detail = re.search(r'(Unsupported global|Unsupported operand|Trying '
                           r'to|Can only)[^\n]*', str(exc))
        raise CheckpointError(
            f'Refusing to load checkpoint "{name}": it asks to run or build '
            f'something other than tensors ('
            f'{detail.group(0) if detail else first_line}). Checkpoints are '
            'loaded with weights_only=True so that a file cannot run code. If '
            'you wrote this file yourself and trust it, re-save it as a plain '
            'state dict (torch.save(model.state_dict(), path)).') from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f'Could not read checkpoint "{name}": it is truncated, corrupt or '
            f'not a PyTorch checkpoint ({type(exc).__name__}: '
            f'{str(exc).strip().splitlines()[0] if str(exc) else ""}). '
            'Download or save it again.') from exc


def _load_from_local(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint "{filename}" does not exist; check the path given '
            'to init_cfg, load_from or --resume.')
    return safe_torch_load(filename, filename, map_location)


def _load_from_http(filename: str, map_location=None, model_dir=None):
    # torch.hub's cache and download, but our own weights_only=True load.
    from mmengine.dist import get_dist_info, barrier
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        _download(filename, cached)
    if world_size > 1:
        barrier()
    return safe_torch_load(cached, filename, map_location)


def _download(url: str, dst: str) -> None:
    try:
        torch.hub.download_url_to_file(url, dst, progress=False)
    except Exception as exc:  # urllib raises several unrelated types
        raise CheckpointError(
            f'Could not download checkpoint "{url}" ({type(exc).__name__}: '
            f'{exc}). Without network access, download it elsewhere and pass '
            'the local file instead, e.g. --cfg-options '
            'model.backbone.init_cfg.checkpoint=/path/to/'
            f'{osp.basename(urlparse(url).path)}') from exc


def register_safe_loaders() -> None:
    """Route mmengine's local and http(s) checkpoint loading through
    :func:`safe_torch_load`."""
    allow_mmengine_checkpoint_globals()
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), force=True)(_load_from_http)


def extract_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """Unwrap ``{'state_dict': ...}`` / ``{'model': ...}`` containers."""
    for _ in range(3):  # an mmengine checkpoint of a wrapped model nests once
        if isinstance(checkpoint, Mapping):
            inner = next((checkpoint[k] for k in WRAPPER_KEYS
                          if isinstance(checkpoint.get(k), Mapping)), None)
            if inner is not None:
                checkpoint = inner
                continue
        break
    if not isinstance(checkpoint, Mapping) or not checkpoint or not all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise CheckpointMismatchError(
            'Checkpoint is not a state dict of tensors (nor one wrapped in '
            f'{" or ".join(WRAPPER_KEYS)}); got '
            f'{type(checkpoint).__name__} with keys '
            f'{list(checkpoint)[:5] if isinstance(checkpoint, Mapping) else []}.')
    return OrderedDict(checkpoint)


def convert_official_keys(
        state_dict: Mapping[str, torch.Tensor],
        prefix: Optional[str] = None
) -> Tuple['OrderedDict[str, torch.Tensor]', Dict[str, List[str]]]:
    """Turn an official ImageNet (or downstream) state dict into backbone keys.

    Strips ``module.``; with ``prefix`` keeps only the keys under it (e.g.
    ``'backbone.'`` of a detector); without, keeps the ``backbone.`` keys when
    there are any. Classifier keys (``norm.*``, ``head.*``) are dropped.

    Returns:
        The backbone state dict and the dropped keys, grouped by reason.
    """
    dropped: Dict[str, List[str]] = {'classifier': [], 'outside prefix': []}
    keys = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())
    if prefix is None and any(k.startswith('backbone.') for k in keys):
        prefix = 'backbone.'
    result = OrderedDict()
    for key, value in keys.items():
        if prefix:
            if not key.startswith(prefix):
                dropped['outside prefix'].append(key)
                continue
            key = key[len(prefix):]
        if key.startswith(CLASSIFIER_PREFIXES):
            dropped['classifier'].append(key)
            continue
        result[key] = value
    return result, dropped


def guess_arch(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Name the zoo size a backbone state dict was made for, if any."""
    try:
        channels = state_dict['tokenizer.block.6.weight'].shape[0]
    except (KeyError, AttributeError, IndexError):
        return None
    conv_blocks = len({k.split('.')[2] for k in state_dict
                       if k.startswith('conv_stages.conv_blocks.')})
    blocks = [
        len({k.split('.')[3] for k in state_dict
             if k.startswith(f'stages.{i}.blocks.')}) for i in range(3)
    ]
    for name, arch in ARCH_ZOO.items():
        if (arch['channels'], arch['conv_blocks'], arch['blocks']) == \
                (channels, conv_blocks, blocks):
            return name
    return None


def check_state_dict_fits(model: nn.Module,
                          state_dict: Mapping[str, torch.Tensor],
                          name: str = 'checkpoint') -> None:
    """Raise :class:`CheckpointMismatchError` listing every key that is
    missing, unexpected or of the wrong shape."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(expected[k].shape)}' for k in expected
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    if not (missing or unexpected or wrong_shape):
        return

    def listing(title, items, limit=10):
        more = f' ... and {len(items) - limit} more' if len(items) > limit \
            else ''
        return f'\n  {title} ({len(items)}): ' + ', '.join(items[:limit]) + more

    arch_hint = ''
    found = guess_arch(state_dict)
    model_arch = getattr(model, 'arch_settings', None)
    if found is not None and model_arch is not None and \
            ARCH_ZOO[found] != model_arch:
        arch_hint = (f'\n  The checkpoint looks like ConvMLP-{found.upper()}:'
                     f' build the backbone with arch="{found}", or use the '
                     'checkpoint of the size you built.')
    raise CheckpointMismatchError(
        f'{name} does not fit this ConvMLP backbone.' +
        (listing('missing keys', missing) if missing else '') +
        (listing('unexpected keys', unexpected) if unexpected else '') +
        (listing('shape mismatches', wrong_shape) if wrong_shape else '') +
        arch_hint)


def load_backbone_checkpoint(model: nn.Module,
                             filename: str,
                             prefix: Optional[str] = None) -> None:
    """Load an official ImageNet checkpoint (or a backbone/detector one)
    into ``model`` strictly. See the module docstring for the rules."""
    checkpoint = CheckpointLoader.load_checkpoint(filename,
                                                  map_location='cpu')
    state_dict, dropped = convert_official_keys(
        extract_state_dict(checkpoint), prefix)
    check_state_dict_fits(model, state_dict, f'Checkpoint "{filename}"')
    model.load_state_dict(state_dict, strict=True)
    print_log(f'ConvMLP: loaded {len(state_dict)} backbone tensors from '
              f'{filename}', logger='current')
    if dropped['classifier']:
        print_log(f'ConvMLP: dropped the ImageNet classifier\'s '
                  f'{len(dropped["classifier"])} tensors (norm.*, head.*), '
                  'which the backbone does not use', logger='current')
    if dropped['outside prefix']:
        print_log(f'ConvMLP: ignored {len(dropped["outside prefix"])} tensors '
                  f'outside "{prefix or "backbone."}" (e.g. '
                  f'{dropped["outside prefix"][0]})', logger='current')


def save_checkpoint_atomically(obj, path: str) -> None:
    """``torch.save`` to a temporary file renamed into place, so an
    interrupted write never leaves a half-written file under ``path``."""
    partial = partial_path(path)
    torch.save(obj, partial)
    replace_atomically(partial, path)
