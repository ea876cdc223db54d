"""One error line from every tool.

Each tool's ``main`` is wrapped with :func:`command`: a user mistake (bad
data, checkpoint, config, flag or file) ends with one line
``error: <what is wrong and the fix>`` on stderr and exit status 1; a
traceback is shown only when asked for, with ``--debug`` on the command line
or ``CONVMLP_DEBUG=1`` in the environment. Anything else is a bug and keeps
its traceback.
"""
import errno
import functools
import os
import sys
from typing import Callable, List, Optional, Sequence

__all__ = ['DEBUG_ENV', 'DEBUG_FLAG', 'command', 'error_line',
           'is_user_error']

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
    text = '; '.join(line.strip() for line in text.splitlines()
                     if line.strip())
    return text if _is_ours(exc) else text + HINT


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
        if debug:
            return main(args)
        try:
            return main(args)
        except SystemExit as exc:
            code = exc.code
            if isinstance(code, str) and not code.startswith('error:'):
                raise SystemExit(f'error: {code}') from None
            raise
        except KeyboardInterrupt:
            print('error: interrupted', file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as exc:  # noqa: BLE001 (sorted by is_user_error)
            if not is_user_error(exc):
                raise
            raise SystemExit(f'error: {error_line(exc)}') from None

    return wrapper
