"""One training run per work dir: :class:`WorkDirLock`.

Two runs on one work dir overwrite each other's checkpoints and
``last_checkpoint``. The lock is ``fcntl.flock`` on ``WORK_DIR/.train.lock``:
the kernel releases it when the holding process ends, however it ends
(SIGKILL, OOM kill), so a killed run never blocks the next one and there is
nothing to clean up.
The file keeps the holder's PID for the error message. In a distributed run
only rank 0 takes it (see ``ConvMLPRunner.train``).
"""
import errno
import fcntl
import os
import os.path as osp
import socket
from typing import Optional

from convmlp_mm.errors import WorkDirInUseError  # noqa: F401

LOCK_NAME = '.train.lock'


class WorkDirLock:
    """Hold the training lock of ``work_dir`` until :meth:`release` or the
    end of the process."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self._fd: Optional[int] = None

    def acquire(self) -> 'WorkDirLock':
        """Take the lock or raise :class:`WorkDirInUseError` at once (never
        waits)."""
        os.makedirs(self.work_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN,
                                 errno.EACCES):
                raise
            raise WorkDirInUseError(
                f'work dir {self.work_dir} is in use by another training run '
                f'({self._holder()}; lock {self.path}). Wait for it to end '
                'or stop it, or pass another --work-dir.') from None
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()} {socket.gethostname()}\n'.encode())
        self._fd = fd
        return self

    def _holder(self) -> str:
        try:
            with open(self.path) as f:
                pid, _, host = f.read().strip().partition(' ')
        except OSError:
            pid, host = '', ''
        return (f'PID {pid}' + (f' on {host}' if host else '')) if pid \
            else 'PID unknown'

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor unlocks
            self._fd = None
