"""Every tool ends a user mistake with one ``error:`` line and a non-zero
exit status, without a traceback; ``--debug`` or ``CONVMLP_DEBUG=1`` shows
the traceback; a bug keeps its traceback."""
import errno
import os.path as osp
import subprocess
import sys

import pytest

from convmlp_mm.cli import DEBUG_ENV, command
from convmlp_mm.errors import ConfigError

from helpers import REPO

RETINANET = 'configs/detection/retinanet_convmlp_s_fpn_1x_coco.py'


def run_tool(tmp_path, *args, env=None):
    environ = dict(__import__('os').environ, PYTHONWARNINGS='ignore',
                   TORCH_HOME=str(tmp_path / 'torch_home'))
    environ.pop(DEBUG_ENV, None)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=environ, timeout=300,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# (tool and arguments, what the error line says); every input is missing.
CASES = [
    (['tools/train.py', 'nope.py'], 'Config file nope.py does not exist'),
    (['tools/test.py', RETINANET, 'nope.pth', '--data-root', 'nope'],
     '--data-root nope is not a folder'),
    (['tools/inference.py', RETINANET, 'none', 'nope.jpg'],
     'Input not found: nope.jpg'),
    (['tools/make_dataset.py', 'coco', '{tmp}/c', '--num-train', '0'],
     'num_train and num_val must be >= 1'),
    (['tools/demo.py', '--data-dir', '/dev/null/x', '--smoke'],
     'Not a directory: /dev/null/x'),
    (['tools/model_converters/convmlp2mmdet.py', 'nope.pth', '{tmp}/o.pth'],
     'Checkpoint "nope.pth" does not exist'),
    (['tools/analysis/get_flops.py', 'xl'],
     "'xl' is neither a backbone size"),
    (['tools/analysis/visualize_features.py', 's', 'nope.jpg'],
     'not found: nope.jpg'),
    (['tools/analysis/benchmark.py', '--device', 'cuda', '--quick'],
     '--device cuda asked for, but torch sees no GPU'),
]


@pytest.mark.parametrize('args,expected', CASES,
                         ids=[c[0][0].split('/')[-1] for c in CASES])
def test_tool_ends_with_one_error_line(tmp_path, args, expected):
    args = [a.replace('{tmp}', str(tmp_path)) for a in args]
    proc = run_tool(tmp_path, *args)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert expected in errors[0]


@pytest.mark.parametrize('how', ['--debug', DEBUG_ENV])
def test_traceback_when_asked(tmp_path, how):
    args = ['tools/train.py', 'nope.py']
    env = {}
    if how == '--debug':
        args.append('--debug')
    else:
        env[DEBUG_ENV] = '1'
    proc = run_tool(tmp_path, *args, env=env)
    assert proc.returncode == 1
    assert 'Traceback' in proc.stderr
    assert 'ConfigError: Config file nope.py does not exist' in proc.stderr


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
