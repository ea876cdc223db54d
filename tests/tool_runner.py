"""Run ``python tools/X.py ARGS`` without paying the interpreter's imports.

Every tool imports torch, mmengine, mmcv, mmdet, mmseg and convmlp_mm before
it does anything: 5-10 s on this 2-core machine, more than most of the runs
the tests make. A ``forkserver`` process imports them once
(:data:`PRELOAD`); each tool run is then a fork of it that sets its own
``argv``, working directory, environment and output files and runs the
script as ``__main__``, as the interpreter would. The fork is a new process
(its own session, pid and signal handlers), so tests that signal, kill or
time it out treat it as they would a subprocess; only the imports are
shared. Where the interpreter's start itself is under test (``__main__``
output of ``-c``, import-time behaviour, bash launchers, torchrun) the tests
keep real subprocesses.
"""
import multiprocessing as mp
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Dict, Optional, Sequence

# What every tool imports before parsing its arguments. Nothing here runs
# a parallel op, so no OpenMP pool exists yet to be broken by the fork.
PRELOAD = ['torch', 'numpy', 'cv2', 'mmengine.runner', 'mmcv.ops',
           'mmdet.apis', 'mmdet.models', 'mmseg.apis', 'mmseg.models',
           'pycocotools.coco', 'convmlp_mm', 'convmlp_mm.apis',
           'convmlp_mm.config', 'convmlp_mm.engine', 'convmlp_mm.cli']

_context = None


def _forkserver():
    global _context
    if _context is None:
        _context = mp.get_context('forkserver')
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _exit_code(exc: SystemExit) -> int:
    """The status the interpreter gives ``raise SystemExit(code)``."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_script(script: str, argv: Sequence[str], cwd: str,
                env: Dict[str, str], out: str, err: str) -> None:
    """In the forked child: become ``python SCRIPT ARGV``."""
    os.setsid()  # its own process group, like a subprocess's children
    for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD,
                signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, 'w', buffering=1, closefd=False)
    sys.stderr = open(2, 'w', buffering=1, closefd=False)
    sys.argv = [script, *argv]
    # A fresh interpreter has no start method yet: the forkserver's
    # 'forkserver' would make mmengine warn that it forces 'fork'.
    import multiprocessing
    multiprocessing.set_start_method(None, force=True)
    # As the interpreter: the script's folder, then $PYTHONPATH, then
    # the rest (site-packages).
    extra = [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p]
    sys.path[:] = [os.path.dirname(os.path.abspath(script))] + extra + [
        p for p in sys.path[1:] if p not in extra]
    code = 0
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as exc:
        code = _exit_code(exc)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = 130
    except BaseException:  # the interpreter's own report of a bug
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class ToolProcess:
    """A started tool run; the subset of ``subprocess.Popen`` tests use."""

    def __init__(self, script: str, argv: Sequence[str], cwd: str,
                 env: Dict[str, str]):
        self._files = tempfile.mkdtemp(prefix='tool-run-')
        self.out_path = os.path.join(self._files, 'stdout')
        self.err_path = os.path.join(self._files, 'stderr')
        self.args = [sys.executable, script, *argv]
        self._process = _forkserver().Process(
            target=_run_script,
            args=(script, list(argv), cwd, dict(env), self.out_path,
                  self.err_path))
        self._process.start()
        self.pid = self._process.pid
        self.returncode = None

    def poll(self) -> Optional[int]:
        if self.returncode is None and not self._process.is_alive():
            self._process.join()
            code = self._process.exitcode
            # multiprocessing reports death by signal N as -N, as Popen does
            self.returncode = code
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill_group(self) -> None:
        """SIGKILL the run and anything it started (its process group)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._process.join(30)
        self.poll()

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def output(self):
        with open(self.out_path, errors='replace') as f:
            out = f.read()
        with open(self.err_path, errors='replace') as f:
            err = f.read()
        return out, err

    def communicate(self, timeout: Optional[float] = None):
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise
        return self.output()


def is_tool_command(cmd: Sequence[str], repo: str) -> bool:
    """``[python, REPO/tools/....py, ...]``: a run the fork server takes."""
    return len(cmd) >= 2 and cmd[0] == sys.executable and \
        cmd[1].endswith('.py') and \
        os.path.abspath(cmd[1]).startswith(os.path.join(repo, 'tools') +
                                           os.sep)


def start_tool(cmd: Sequence[str], cwd: str,
               env: Dict[str, str]) -> ToolProcess:
    return ToolProcess(cmd[1], list(cmd[2:]), cwd, env)


def run_tool(cmd: Sequence[str], cwd: str, env: Dict[str, str],
             timeout: float) -> subprocess.CompletedProcess:
    """Like ``subprocess.run(cmd, ..., timeout=timeout, text=True)`` with
    both outputs captured; a run past ``timeout`` is killed with everything
    it started and raises ``subprocess.TimeoutExpired``."""
    started = time.monotonic()
    proc = start_tool(cmd, cwd, env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise subprocess.TimeoutExpired(
            list(cmd), time.monotonic() - started) from None
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)
