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
import traceback
from typing import Callable, List, Optional, Sequence

__all__ = ['DEBUG_ENV', 'DEBUG_FLAG', 'command', 'error_line',
           'is_user_error', 'one_line', 'raise_user_error']

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
    return text if _is_ours(exc) else text + HINT


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
