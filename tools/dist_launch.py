"""torchrun for tools/dist_train.sh (and so ./dist_detection.sh,
./dist_segmentation.sh): ``python -m torch.distributed.run`` with the same
arguments and behaviour, except for a preempted run. When this node's
processes were stopped by a signal (they exit 75,
``convmlp_mm.engine.PREEMPTED_EXIT_CODE``), this node exits 75 as well, with
one line, where torchrun exits 1 with a traceback: a wrapper that requeues
on 75 then requeues every node (docs/preemption.md).

    python tools/dist_launch.py [torchrun options] SCRIPT [SCRIPT args]
"""
import argparse
import signal
import sys
from typing import Optional, Sequence

from convmlp_mm_cli import PREEMPTED_EXIT_CODE

# Once one process has exited, torchrun ends the others (SIGTERM, SIGKILL
# after its timeout) and counts them as failed too.
ENDED_BY_TORCHRUN = (-signal.SIGTERM, -signal.SIGKILL)


def answer_help(argv: Sequence[str]) -> None:
    """``--help`` (or nothing) is answered here, before torch loads; every
    other argument is torchrun's."""
    parser = argparse.ArgumentParser(
        usage='%(prog)s [torchrun options] SCRIPT [SCRIPT args]',
        description='torchrun that exits 75 when the processes of this node '
        'were preempted and saved (exit 75), as tools/train.py does, '
        'instead of torchrun\'s 1. Arguments: python -m '
        'torch.distributed.run --help.')
    if not argv or argv[0] in ('-h', '--help'):
        parser.parse_args(['--help'])


def preempted(exit_codes: Sequence[int]) -> bool:
    """Whether a node's failed processes mean "preempted, saved": one
    exited 75 and every other one exited 75 or was ended by torchrun after
    it."""
    return PREEMPTED_EXIT_CODE in exit_codes and all(
        code in (PREEMPTED_EXIT_CODE, *ENDED_BY_TORCHRUN)
        for code in exit_codes)


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    answer_help(argv)
    from torch.distributed.elastic.multiprocessing.errors import (
        ChildFailedError,
    )
    from torch.distributed.run import parse_args as torchrun_args
    from torch.distributed.run import run
    try:
        run(torchrun_args(argv))
    except ChildFailedError as exc:
        codes = [failure.exitcode for failure in exc.failures.values()]
        if not preempted(codes):
            raise
        ranks = ', '.join(str(rank) for rank in sorted(exc.failures))
        print(f'preempted: the processes of this node (rank {ranks}) exited '
              f'{PREEMPTED_EXIT_CODE}, stopped by a signal (each says what it '
              'saved); run the same command again on every node to resume',
              file=sys.stderr)
        raise SystemExit(PREEMPTED_EXIT_CODE) from None


if __name__ == '__main__':
    main()
