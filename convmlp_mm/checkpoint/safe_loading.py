"""Safe checkpoint loading: the one process-wide change importing
``convmlp_mm`` makes.

:func:`register_safe_loaders` (called by ``convmlp_mm/__init__.py``) makes
every scheme of mmengine's ``CheckpointLoader`` load with
``weights_only=True``: the ones registered now (local files, ``http(s)://``,
``open-mmlab://``, ``mmcls://``, ``torchvision://``, ``pavi://``, ...) and
any a package registers later. The zoo schemes resolve a name to a URL and
call ``torch.hub.load_state_dict_from_url``, which unpickles with
``weights_only=False`` a file it finds in ``$TORCH_HOME/hub/checkpoints``;
so rather than re-implement each scheme, every scheme loader runs inside
:func:`weights_only_torch_load`, where ``torch.load`` itself is
:func:`safe_torch_load` whatever its caller asks for. After the import, the
backbone's ``init_cfg``, a config's ``load_from``, ``--resume`` and the tools
all load through the same door. There is deliberately no switch to turn this
off: a checkpoint must never be able to run code.

Resuming: mmengine's own training checkpoints hold a ``HistoryBuffer`` (numpy
arrays and scalars) in their message hub. Exactly the classes that needs are
allow-listed; the ``getattr`` its pickle calls is served by a stand-in that
resolves only ``HistoryBuffer``'s statistics methods, and only inside our
loader, because allow-listing ``builtins.getattr`` itself would let a pickle
reach any attribute of any allowed object.
"""
import contextlib
import functools
import os
import os.path as osp
import pickle
import re
import threading
from typing import Callable, List
from urllib.parse import urlparse

import torch
from mmengine.runner.checkpoint import CheckpointLoader
from convmlp_mm.errors import CheckpointError  # noqa: F401


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
            # torch.serialization.load, not torch.load: inside
            # weights_only_torch_load the latter is this function.
            return torch.serialization.load(
                source, map_location=map_location, weights_only=True)
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
    from mmengine.dist import barrier, get_dist_info
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        _download(filename, cached)
    if world_size > 1:
        barrier()
    return safe_torch_load(cached, f'{filename} (file {cached})',
                           map_location)


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


# Held while torch.load is swapped: one swap at a time, re-entrant for a
# scheme loader that calls another (open-mmlab:// calls http's).
_SWAP_LOCK = threading.RLock()
_SAFE_MARK = '_convmlp_weights_only'


@contextlib.contextmanager
def weights_only_torch_load(name: str):
    """Inside this block every ``torch.load`` call (torch.hub's, mmengine's,
    a third-party scheme's) is :func:`safe_torch_load`, whatever
    ``weights_only`` its caller passes; errors name ``name`` and the file."""

    def forced(f, map_location=None, *args, **kwargs):
        shown = name
        if isinstance(f, (str, os.PathLike)) and os.fspath(f) != name:
            shown = f'{name} (file {os.fspath(f)})'
        return safe_torch_load(f, shown, map_location)

    with _SWAP_LOCK:
        previous = torch.load
        torch.load = forced
        try:
            yield
        finally:
            torch.load = previous


def make_scheme_loader_safe(loader: Callable) -> Callable:
    """``loader`` (a ``CheckpointLoader`` scheme function) run inside
    :func:`weights_only_torch_load`; a scheme that cannot work here (its
    package is missing, the name is not in its list) is a
    :class:`CheckpointError` naming the checkpoint."""
    if getattr(loader, _SAFE_MARK, False):
        return loader

    @functools.wraps(loader)  # mmengine logs the loader's __name__
    def safe_loader(filename, map_location=None, *args, **kwargs):
        with weights_only_torch_load(str(filename)):
            try:
                return loader(filename, map_location, *args, **kwargs)
            except ImportError as exc:
                raise CheckpointError(
                    f'Cannot load checkpoint "{filename}": its scheme needs '
                    f'a package that is not installed ({exc}). Download '
                    'the file elsewhere and pass its local path '
                    'instead.') from exc
            except KeyError as exc:
                raise CheckpointError(
                    f'Cannot load checkpoint "{filename}": {exc} is not a '
                    'name this scheme knows. Check the spelling, or pass a '
                    'local path or a URL.') from exc

    setattr(safe_loader, _SAFE_MARK, True)
    return safe_loader


def _patch_checkpoint_loader() -> None:
    """Wrap every registered scheme, every later registration, and (for a
    loader put into ``_schemes`` by hand) every lookup."""
    loader_cls = CheckpointLoader
    for prefix, loader in list(loader_cls._schemes.items()):
        loader_cls._schemes[prefix] = make_scheme_loader_safe(loader)
    if getattr(loader_cls._register_scheme, _SAFE_MARK, False):
        return
    register = loader_cls._register_scheme.__func__
    get_loader = loader_cls._get_checkpoint_loader.__func__

    def _register_scheme(cls, prefixes, loader, force=False):
        return register(cls, prefixes, make_scheme_loader_safe(loader),
                        force=force)

    def _get_checkpoint_loader(cls, path):
        loader = get_loader(cls, path)
        return None if loader is None else make_scheme_loader_safe(loader)

    for function in (_register_scheme, _get_checkpoint_loader):
        setattr(function, _SAFE_MARK, True)
    loader_cls._register_scheme = classmethod(_register_scheme)
    loader_cls._get_checkpoint_loader = classmethod(_get_checkpoint_loader)


def register_safe_loaders() -> None:
    """Make every ``CheckpointLoader`` scheme, present and future, load with
    ``weights_only=True``; local files and ``http(s)://`` go through
    :func:`safe_torch_load` directly (clearer errors, no network needed for
    a cached file). Idempotent."""
    allow_mmengine_checkpoint_globals()
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_from_local)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), force=True)(_load_from_http)
    _patch_checkpoint_loader()
