"""What a tool needs before it imports torch: parsing its arguments and
turning a user mistake into one ``error:`` line.

Outside the ``convmlp_mm`` package on purpose: importing anything in the
package runs ``convmlp_mm/__init__.py``, which registers the models and so
imports torch, mmcv, mmdet and mmseg (seconds). The tools import this module
(the standard library only), parse their arguments, and import the package
after: ``--help`` and a usage mistake answer at once. ``convmlp_mm.cli``
re-exports the error handling and the argument builders.

Each tool's ``main`` is wrapped with :func:`command`: a user mistake (bad
data, checkpoint, config, flag or file) ends with one line
``error: <what is wrong and the fix>`` on stderr and exit status 1; a
traceback is shown only when asked for, with ``--debug`` on the command line
or ``CONVMLP_DEBUG=1`` in the environment. Anything else is a bug and keeps
its traceback. No tool handles errors itself.

The builders (:func:`run_parser`, :func:`parse_run_args`,
:func:`add_model_arguments`, :func:`add_cfg_options`,
:func:`add_shape_argument`, :func:`add_class_arguments`,
:func:`add_train_weight_arguments`, :func:`add_test_view_arguments`) write
each flag the tools share once, with the same name, type and help in every
tool; :func:`parse_shape` reads the sizes (``224``, ``800x1333``) of every
tool.

:func:`startup_signals` (``tools/train.py``) makes a SIGTERM or SIGUSR1 that
comes before training starts exit with :data:`PREEMPTED_EXIT_CODE` and one
line, as the ``PreemptionHook`` does once it takes over.
"""
import argparse
import contextlib
import errno
import functools
import os
import signal
import sys
import threading
import traceback
from typing import (
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

__all__ = ['DEBUG_ENV', 'DEBUG_FLAG', 'PREEMPTED_EXIT_CODE', 'CfgOptions',
           'add_cfg_options', 'add_class_arguments', 'add_model_arguments',
           'add_shape_argument', 'add_test_view_arguments',
           'add_train_weight_arguments', 'command', 'end_startup_signals',
           'error_line', 'is_user_error', 'one_line', 'optional_checkpoint',
           'parse_run_args', 'parse_shape', 'raise_user_error', 'run_parser',
           'shape_type', 'startup_signals']

DEBUG_ENV = 'CONVMLP_DEBUG'
DEBUG_FLAG = '--debug'
# The hint on errors that are not the project's own (they may be bugs).
HINT = f' ({DEBUG_FLAG} or {DEBUG_ENV}=1 shows the traceback)'


def _is_ours(exc: BaseException) -> bool:
    # Every error class the project defines names a user mistake and its fix
    # (ConfigError, AnnotationError, CheckpointError, ...).
    return type(exc).__module__.split('.')[0] == 'convmlp_mm'


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` reports a mistake in what the user gave (the
    project's errors, files, values, config typos), not a bug."""
    if _is_ours(exc) or isinstance(exc, (OSError, ValueError)):
        return True
    text = str(exc)
    if isinstance(exc, TypeError):
        # mmengine builds classes from config dicts: a misspelt argument.
        return 'unexpected keyword argument' in text or \
            'unknown argument' in text
    if isinstance(exc, KeyError):
        return 'registry' in text  # "X is not in the mmdet::model registry"
    if isinstance(exc, AssertionError):
        # mmcv's LoadImageFromFile: a file that does not decode (its path
        # is in the message).
        return text.startswith('failed to load image')
    return False


def error_line(exc: BaseException) -> str:
    """``exc`` as one line (no ``error:`` prefix)."""
    if isinstance(exc, OSError) and exc.strerror and not _is_ours(exc):
        where = f' {exc.filename}' if exc.filename else ''
        text = f'{exc.strerror}:{where}'
        if exc.errno == errno.ENOSPC:
            text += ': the disk is full; free some space and run again'
    else:
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args \
            else str(exc)
        text = text or type(exc).__name__
    if 'Original Traceback' in text:
        # torch's DataLoader re-raises a worker's error with the worker's
        # traceback in the message; its last line is the error itself.
        last = text.strip().splitlines()[-1]
        text = last.split(': ', 1)[-1]
    text = one_line(text)
    # A missing file named in a message of its own (FileNotFoundError('...'),
    # no errno: raised on purpose, by this project or a library) is no bug.
    on_purpose = isinstance(exc, OSError) and exc.errno is None
    return text if _is_ours(exc) or on_purpose else text + HINT


def one_line(text: str) -> str:
    """``text`` with its lines joined by ``'; '`` (lists of paths, ...)."""
    joined = ''
    for line in (part.strip() for part in text.splitlines()):
        if not line:
            continue
        if joined:
            joined += ' ' if joined.endswith((';', ':', ',')) else '; '
        joined += line
    return joined


def _debug_requested(args: List[str]) -> bool:
    return DEBUG_FLAG in args or \
        os.environ.get(DEBUG_ENV, '').strip() not in ('', '0')


def command(main: Callable) -> Callable:
    """Wrap a tool's ``main(argv=None)`` so that it ends a user mistake with
    one ``error:`` line and exit status 1 (see the module's docstring).
    ``--debug`` is taken out of ``argv`` before ``main`` parses it."""

    @functools.wraps(main)
    def wrapper(argv: Optional[Sequence[str]] = None):
        args = list(sys.argv[1:] if argv is None else argv)
        debug = _debug_requested(args)
        args = [a for a in args if a != DEBUG_FLAG]
        try:
            return main(args)
        except SystemExit as exc:
            code = exc.code
            if not isinstance(code, str):
                raise
            if debug and exc.__context__ is not None:
                # A tool that turned an exception into its error line: show
                # what it caught.
                traceback.print_exception(exc.__context__)
            if not code.startswith('error:'):
                code = f'error: {code}'
            raise SystemExit(one_line(code)) from None
        except BaseException:
            if debug:
                raise
            raise_user_error()

    return wrapper


def raise_user_error() -> None:
    """Inside an ``except``: turn the exception being handled into one
    ``error:`` line (``SystemExit``) when it is a user mistake, else
    re-raise it."""
    exc = sys.exc_info()[1]
    if isinstance(exc, KeyboardInterrupt):
        print('error: interrupted', file=sys.stderr)
        raise SystemExit(130) from None
    if isinstance(exc, Exception) and is_user_error(exc):
        raise SystemExit(f'error: {error_line(exc)}') from None
    raise exc


# --------------------------------------------------------------------------
# Signals before training starts
# --------------------------------------------------------------------------
# sysexits.h EX_TEMPFAIL, "try again later": what a run stopped by a
# preemption signal exits with, saved or not. Not 0 (Slurm and Kubernetes
# would call the job done), not 128 + a signal number (what a process
# killed without handling it reports), not 1 (a crash).
PREEMPTED_EXIT_CODE = 75
STARTUP_SIGNALS = ('SIGTERM', 'SIGUSR1')

# Signal number -> the handler startup_signals replaced.
_replaced: Dict[int, object] = {}


class _StoppedDuringStartup(BaseException):
    """A BaseException, as KeyboardInterrupt: no ``except Exception`` on
    the way (a library's retry, a data check) may swallow the stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_startup(signum, frame) -> None:
    # Raising is the one way to leave an import, a data check or a model
    # build at once; nothing has been saved yet, so nothing is cut short.
    raise _StoppedDuringStartup(signum)


def end_startup_signals() -> None:
    """Put back the handlers :func:`startup_signals` replaced (the default
    action, usually), where they are still its own. The runner calls this
    when training starts, just before the ``PreemptionHook`` installs its
    handlers; a no-op outside :func:`startup_signals`."""
    for signum, previous in list(_replaced.items()):
        if signal.getsignal(signum) is _stop_startup:
            signal.signal(signum, previous)
        del _replaced[signum]


@contextlib.contextmanager
def startup_signals() -> Iterator[None]:
    """Around a training tool's ``main``: a SIGTERM or SIGUSR1 (a
    preemption, ``--signal=USR1@T``) that comes during start-up (imports,
    data checks, model build, checkpoint loading; until
    :func:`end_startup_signals`) ends the run with one line on stderr and
    :data:`PREEMPTED_EXIT_CODE`, as a preempted run, so that a wrapper that
    requeues on 75 runs it again. Nothing has been trained, so nothing is
    saved. In the main thread only (where signal handlers live)."""
    if threading.current_thread() is threading.main_thread():
        for name in STARTUP_SIGNALS:
            signum = getattr(signal, name)
            _replaced.setdefault(signum, signal.signal(signum,
                                                       _stop_startup))
    try:
        try:
            yield
        finally:
            # Inside the outer try: a signal that comes while the handlers
            # are put back still ends in the line below.
            end_startup_signals()
    except _StoppedDuringStartup as stop:
        print(f'stopped by {signal.Signals(stop.signum).name} during '
              'start-up, before the first training iteration: nothing was '
              f'saved (exit status {PREEMPTED_EXIT_CODE}); run the same '
              'command again', file=sys.stderr, flush=True)
        raise SystemExit(PREEMPTED_EXIT_CODE) from None


# --------------------------------------------------------------------------
# Argument builders
# --------------------------------------------------------------------------
def parse_shape(shape: Union[str, Sequence[int]]) -> Tuple[int, int]:
    """``'N'``, ``'HxW'``, ``[n]`` or ``[h, w]`` -> ``(h, w)``; raises
    ``ValueError`` with the accepted forms."""
    if isinstance(shape, str):
        parts = shape.lower().split('x')
    else:
        parts = list(shape)
    if len(parts) == 1:
        parts = parts * 2
    try:
        h, w = (int(p) for p in parts)
    except (TypeError, ValueError):
        h = w = 0
    if min(h, w) < 1:
        raise ValueError(
            f'size {shape!r} is not N or HxW with positive integers (e.g. '
            '224 or 800x1333)')
    return h, w


def shape_type(text: str) -> Tuple[int, int]:
    """:func:`parse_shape` as an argparse ``type`` (``224`` or
    ``800x1333``): a bad size is argparse's usage error naming it."""
    try:
        return parse_shape(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def add_shape_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--shape HEIGHT [WIDTH]``; read it with :func:`shape_of`."""
    parser.add_argument('--shape', type=int, nargs='+',
                        metavar='SIZE', help=help)


class CfgOptions(argparse.Action):
    """mmengine's ``DictAction`` (``key=value`` pairs into one dict, values
    read as int, float, bool, None, lists and tuples), imported when the
    flag is given: ``mmengine.config`` takes half a second to import, and
    ``--help`` does not need it."""

    def __call__(self, parser, namespace, values, option_string=None):
        from mmengine.config import DictAction
        DictAction(self.option_strings, self.dest, nargs=self.nargs)(
            parser, namespace, values, option_string)


def add_cfg_options(parser: argparse.ArgumentParser, example: str = '',
                    help: Optional[str] = None, **kwargs) -> None:
    """``--cfg-options key=value ...`` (mmengine's ``DictAction``)."""
    if help is None:
        help = 'override config settings, key=value' + (
            f' (e.g. {example})' if example else '')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptions,
                        help=help, **kwargs)


def optional_checkpoint(text: str) -> Optional[str]:
    """A checkpoint argument: ``none`` (any case) means random weights."""
    return None if text.lower() == 'none' else text


def add_model_arguments(parser: argparse.ArgumentParser, config_help: str,
                        checkpoint_help: str, cfg_example: str) -> None:
    """``CONFIG CHECKPOINT`` (``none``: random weights, read as ``None``)
    and ``--cfg-options``: the model of the inference and export tools."""
    parser.add_argument('config', help=config_help)
    parser.add_argument('checkpoint', type=optional_checkpoint,
                        help=checkpoint_help + '; "none" runs random '
                        'weights')
    add_cfg_options(parser, cfg_example)


def add_class_arguments(parser: argparse.ArgumentParser) -> None:
    """``--classes`` and ``--classes-subset-ok`` (train.py and test.py)."""
    parser.add_argument(
        '--classes',
        help='"auto": read the class names from the data (the COCO '
        'annotation file\'s categories, in its order; for segmentation '
        'DATA_ROOT/classes.txt) and set them in every dataset and head; or '
        'the names themselves, comma-separated (docs/own_data.md)')
    parser.add_argument(
        '--classes-subset-ok',
        action='store_true',
        help='the annotation file holds only some of the config\'s classes '
        'on purpose: do not stop (same as --cfg-options '
        'classes_subset_ok=True)')


def add_train_weight_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backbone-checkpoint`` and ``--tensorboard`` (train.py)."""
    parser.add_argument(
        '--backbone-checkpoint',
        metavar='PATH',
        help='initialise the backbone from this ImageNet checkpoint (local '
        'file or URL), in any config, demo configs included')
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also log to TensorBoard (WORK_DIR/TIMESTAMP/vis_data); needs '
        'the tensorboard extra (make install installs it)')


def add_test_view_arguments(parser: argparse.ArgumentParser) -> None:
    """``--show``, ``--wait-time`` and ``--tta`` (test.py), as upstream."""
    parser.add_argument(
        '--show', action='store_true',
        help='show each prediction in a window (needs a display)')
    parser.add_argument(
        '--wait-time', type=float, default=2,
        help='seconds each --show window stays (default 2)')
    parser.add_argument(
        '--tta', action='store_true',
        help='test-time augmentation: the config\'s tta_model and '
        'tta_pipeline, or upstream\'s (flip, merged by NMS, for RetinaNet)')


def run_parser(description: str, config_help: str, *, checkpoint: bool,
               work_dir_help: str, data_root_help: str, cfg_example: str,
               task_help: str) -> argparse.ArgumentParser:
    """The flags ``tools/train.py`` and ``tools/test.py`` share (upstream's
    and ``--data-root``, ``--task``, the class options); parse with
    :func:`parse_run_args`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help=config_help)
    if checkpoint:
        parser.add_argument('checkpoint',
                            help='checkpoint file (path or URL)')
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument('--data-root', help=data_root_help)
    add_cfg_options(parser, cfg_example)
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--task',
        choices=['detection', 'segmentation'],
        help=task_help)
    add_class_arguments(parser)
    return parser


def parse_run_args(parser: argparse.ArgumentParser,
                   argv: Optional[Sequence[str]] = None
                   ) -> argparse.Namespace:
    """Parse with ``--local-rank`` (torch.distributed.launch passes it;
    torchrun sets ``LOCAL_RANK``, which this sets when missing)."""
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
