"""One error line from every tool, and the argument builders the tools
share: the names of the light :mod:`convmlp_mm_cli` (standard library only,
outside the package so that a tool parses its arguments before torch loads),
and :func:`shape_of` and :func:`device_of`, which raise the package's
:class:`~convmlp_mm.errors.ConfigError`.

Each tool's ``main`` is wrapped with :func:`command`: a user mistake (bad
data, checkpoint, config, flag or file) ends with one line
``error: <what is wrong and the fix>`` on stderr and exit status 1; a
traceback is shown only when asked for, with ``--debug`` on the command line
or ``CONVMLP_DEBUG=1`` in the environment.
"""
from typing import Optional, Sequence, Tuple

from convmlp_mm.errors import ConfigError
from convmlp_mm_cli import (
    DEBUG_ENV,
    DEBUG_FLAG,
    CfgOptions,
    add_cfg_options,
    add_class_arguments,
    add_model_arguments,
    add_shape_argument,
    add_test_view_arguments,
    add_train_weight_arguments,
    command,
    error_line,
    is_user_error,
    one_line,
    optional_checkpoint,
    parse_run_args,
    parse_shape,
    raise_user_error,
    run_parser,
    shape_type,
)

__all__ = ['DEBUG_ENV', 'DEBUG_FLAG', 'CfgOptions', 'add_cfg_options',
           'add_class_arguments', 'add_model_arguments',
           'add_shape_argument', 'add_test_view_arguments',
           'add_train_weight_arguments', 'command', 'device_of',
           'error_line', 'is_user_error', 'one_line', 'optional_checkpoint',
           'parse_run_args', 'parse_shape', 'raise_user_error', 'run_parser',
           'shape_of', 'shape_type']


def shape_of(values: Optional[Sequence[int]],
             flag: str = '--shape') -> Optional[Tuple[int, int]]:
    """``--shape`` as ``(h, w)`` (``None`` when not given); a bad size is a
    :class:`~convmlp_mm.errors.ConfigError` naming the flag."""
    if not values:
        return None
    try:
        return parse_shape(values)
    except ValueError as exc:
        raise ConfigError(f'{flag} takes one or two positive integers '
                          f'(height [width]): {exc}') from None


def device_of(text: Optional[str], flag: str = '--device') -> Optional[str]:
    """``text`` when torch can run on that device here (``None``: the
    caller's default); else a :class:`~convmlp_mm.errors.ConfigError`
    naming the flag: an unknown device, ``cuda`` without a GPU (torch's own
    error is a bare assertion), a GPU index past the last."""
    if text is None:
        return None
    import torch
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f'{flag} {text} is not a device torch knows; use '
                          'cpu, cuda or cuda:N.') from None
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f'{flag} {text} asked for, but torch sees no '
                              f'GPU; use {flag} cpu.')
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f'{flag} {text}: torch sees {count} GPU(s), cuda:0 to '
                f'cuda:{count - 1}; pick one of them.')
    return text
