"""Every tool ends a user mistake with one ``error:`` line and a non-zero
exit status, without a traceback; ``--debug`` or ``CONVMLP_DEBUG=1`` shows
the traceback; a bug keeps its traceback.

The tools are called in process (``main(argv)``, the ``SystemExit`` the
interpreter would print): every case below fails before a model or runner
is built. One real interpreter checks what only it shows: ``--debug``'s
traceback printed by Python itself."""
import errno
import os.path as osp
import subprocess
import sys

import pytest

from convmlp_mm.cli import DEBUG_ENV, command
from convmlp_mm.errors import ConfigError

from helpers import REPO, load_tool

RETINANET = 'configs/detection/retinanet_convmlp_s_fpn_1x_coco.py'


def error_of(tool, argv):
    """``tools/<tool>``'s ``main(argv)`` in process: the one line it exits
    with (what the interpreter prints on stderr, status 1)."""
    with pytest.raises(SystemExit) as info:
        load_tool(tool).main(argv)
    code = info.value.code
    assert isinstance(code, str), f'exit status {code!r}, not an error line'
    return code


# (tool, arguments, what the error line says); every input is missing.
CASES = [
    ('tools/train.py', ['nope.py'], 'Config file nope.py does not exist'),
    ('tools/test.py', [RETINANET, 'nope.pth', '--data-root', 'nope'],
     '--data-root nope is not a folder'),
    ('tools/inference.py', [RETINANET, 'none', 'nope.jpg'],
     'Input not found: nope.jpg'),
    ('tools/make_dataset.py', ['coco', '{tmp}/c', '--num-train', '0'],
     'num_train and num_val must be >= 1'),
    ('tools/demo.py', ['--data-dir', '/dev/null/x', '--smoke',
                       '--work-dir', '{tmp}/w'],
     'Not a directory: /dev/null/x'),
    ('tools/model_converters/convmlp2mmdet.py', ['nope.pth', '{tmp}/o.pth'],
     'Checkpoint "nope.pth" does not exist'),
    ('tools/analysis/get_flops.py', ['xl'],
     "'xl' is neither a backbone size"),
    ('tools/analysis/visualize_features.py', ['s', 'nope.jpg'],
     'not found: nope.jpg'),
    ('tools/analysis/benchmark.py', ['--device', 'cuda', '--quick'],
     '--device cuda asked for, but torch sees no GPU'),
]


@pytest.mark.parametrize('tool,args,expected', CASES,
                         ids=[c[0].split('/')[-1] for c in CASES])
def test_tool_ends_with_one_error_line(tmp_path, monkeypatch, tool, args,
                                       expected):
    """The exit code is the line the interpreter prints (status 1); no
    traceback is in it. (stderr is not read here: mmengine's process-wide
    loggers may hold a stream of an earlier test; the real-process runs of
    tests/test_tools/test_bad_input.py and tests/test_apis read theirs.)"""
    if 'benchmark' in tool:
        import torch  # the case is a machine without a GPU, on any machine
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.chdir(REPO)  # the relative config paths
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    args = [a.replace('{tmp}', str(tmp_path)) for a in args]
    line = error_of(tool, args)
    assert line.startswith('error: ') and '\n' not in line, line
    assert expected in line, line
    assert 'Traceback' not in line


@pytest.mark.e2e
def test_traceback_when_asked_with_debug(tmp_path):
    """A real interpreter: the traceback of an uncaught exception is
    Python's own output, which no in-process call shows."""
    env = dict(__import__('os').environ, PYTHONWARNINGS='ignore',
               TORCH_HOME=str(tmp_path / 'torch_home'))
    env.pop(DEBUG_ENV, None)
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', 'nope.py', '--debug'], cwd=REPO,
        env=env, timeout=300, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    assert proc.returncode == 1
    assert 'Traceback' in proc.stderr
    assert 'ConfigError: Config file nope.py does not exist' in proc.stderr


def test_traceback_when_asked_with_the_environment(monkeypatch):
    """CONVMLP_DEBUG=1 lets the exception itself out of ``main`` (the
    interpreter prints its traceback, as for --debug above)."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv(DEBUG_ENV, '1')
    with pytest.raises(ConfigError,
                       match='Config file nope.py does not exist'):
        load_tool('tools/train.py').main(['nope.py'])


def test_decorator_maps_user_errors_and_keeps_bugs(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)

    @command
    def main(argv=None):
        kind = argv[0]
        if kind == 'config':
            raise ConfigError('train_cfg.max_epoch is wrong;\nfix it')
        if kind == 'disk':
            raise OSError(errno.ENOSPC, 'No space left on device', 'x.pth')
        if kind == 'exit':
            raise SystemExit('--shape takes one or two integers')
        raise RuntimeError('a bug')

    for kind, line in [
            ('config', 'error: train_cfg.max_epoch is wrong; fix it'),
            ('disk', 'error: No space left on device: x.pth: the disk is '
             'full; free some space and run again'),
            ('exit', 'error: --shape takes one or two integers')]:
        with pytest.raises(SystemExit) as info:
            main([kind])
        assert str(info.value.code).startswith(line)
        assert '\n' not in str(info.value.code)
    with pytest.raises(RuntimeError, match='a bug'):
        main(['bug'])
    with pytest.raises(ConfigError):
        main(['config', '--debug'])
    assert osp.isdir(REPO)


def test_error_from_a_dataloader_worker_is_one_line(monkeypatch):
    """torch re-raises a worker's exception with the worker's traceback in
    its message (ExceptionWrapper); the error line keeps the error."""
    from torch._utils import ExceptionWrapper

    from convmlp_mm.errors import AnnotationError
    monkeypatch.delenv(DEBUG_ENV, raising=False)

    @command
    def main(argv=None):
        try:
            raise AnnotationError('image: x.jpg is not a complete JPEG file')
        except AnnotationError:
            wrapper = ExceptionWrapper(where='in DataLoader worker process 0')
        wrapper.reraise()

    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == \
        'error: image: x.jpg is not a complete JPEG file'
