"""Checkpoints that would run code are refused on every path a file comes in
by (backbone init_cfg: tests/test_models/test_official.py; load_from,
--resume PATH, auto-resume here), and broken files get an error naming
them."""
import os

import pytest
import torch
from mmengine.logging import HistoryBuffer

from convmlp_mm.checkpoint import safe_torch_load
from convmlp_mm.errors import CheckpointError

from helpers import load_tool
from toy_runner import toy_runner, write_tiny_coco


class _RunsCode:
    """Unpickling this calls os.system: the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _Getattr:
    """Pickles as getattr(owner, name): how a pickle reaches methods."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))

    def __call__(self, *args):  # pickle wants a callable in __reduce__
        raise AssertionError


class _RewritesModuleGlobals:
    """getattr(torch._utils._rebuild_tensor_v2, '__globals__') and a
    SETITEMS on it: made only of globals torch allows plus getattr, it
    rewrites a module's namespace while loading (here a harmless marker; the
    same reaches any function later loads call). What allow-listing
    builtins.getattr would let in."""

    def __reduce__(self):
        return (getattr, (torch._utils._rebuild_tensor_v2, '__globals__'),
                None, None, iter([('CONVMLP_TEST_TAMPERED', True)]))


def hostile_checkpoint(path, marker):
    """A genuine-looking mmengine training checkpoint carrying a payload."""
    torch.save({'meta': {'epoch': 1, 'iter': 4},
                'state_dict': {'linear.weight': torch.zeros(1, 2)},
                'message_hub': {'payload': _RunsCode(marker)}}, path)
    return str(path)


@pytest.mark.parametrize('how', ['load_from', 'resume PATH', 'auto-resume'])
def test_code_running_checkpoint_is_refused(tmp_path, how):
    marker = tmp_path / 'code_ran'
    evil = hostile_checkpoint(tmp_path / 'evil.pth', marker)
    work_dir = tmp_path / 'work'
    if how == 'load_from':
        runner = toy_runner(work_dir, max_iters=2, load_from=evil)
    elif how == 'resume PATH':
        runner = toy_runner(work_dir, max_iters=2, load_from=evil,
                            resume=True)
    else:  # --resume without a path: last_checkpoint names the file
        work_dir.mkdir()
        (work_dir / 'last_checkpoint').write_text(evil)
        runner = toy_runner(work_dir, max_iters=2, resume=True)
    with pytest.raises(CheckpointError,
                       match=f'Refusing to load checkpoint "{evil}".*'
                       r'GLOBAL (posix|os|nt)\.system'):
        runner.train()
    assert not marker.exists()


def test_getattr_is_not_allow_listed_wholesale(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'state_dict': {}, 'payload': _RewritesModuleGlobals()}, path)
    with pytest.raises(CheckpointError,
                       match=r"getattr\('_rebuild_tensor_v2', '__globals__'\)"
                       '.*only HistoryBuffer statistics'):
        safe_torch_load(str(path), str(path))
    assert 'CONVMLP_TEST_TAMPERED' not in vars(torch._utils)
    # Why it matters: with builtins.getattr allowed, the same file rewrites
    # torch._utils' globals.
    try:
        with torch.serialization.safe_globals([getattr]):
            torch.load(path, weights_only=True)
        assert vars(torch._utils).get('CONVMLP_TEST_TAMPERED') is True
    finally:
        vars(torch._utils).pop('CONVMLP_TEST_TAMPERED', None)
    # The one getattr mmengine needs still resolves.
    ok = tmp_path / 'ok.pth'
    torch.save({'m': _Getattr(HistoryBuffer, 'mean')}, ok)
    assert safe_torch_load(str(ok), 'ok')['m'] is HistoryBuffer.mean


def test_truncated_resume_checkpoint_names_the_file(tmp_path):
    toy_runner(tmp_path, max_iters=2, interval=2).train()
    good = tmp_path / 'iter_2.pth'
    data = good.read_bytes()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 3])
    runner = toy_runner(tmp_path / 'again', max_iters=4, load_from=str(cut),
                        resume=True)
    with pytest.raises(CheckpointError,
                       match=f'Could not read checkpoint "{cut}": it is '
                       'truncated, corrupt or not a PyTorch checkpoint'):
        runner.train()


@pytest.mark.parametrize('content', [b'', b'not a checkpoint\n',
                                     b'PK\x03\x04garbage'])
def test_non_checkpoint_file_names_the_file(tmp_path, content):
    path = tmp_path / 'notes.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f'Could not read checkpoint '
                       f'"{path}"'):
        safe_torch_load(str(path), str(path))


def test_train_tool_refuses_hostile_resume(tmp_path):
    """tools/train.py --resume evil.pth stops with the one error line (no
    traceback) and the payload never runs (the tool's main, in process)."""
    data_root, config = write_tiny_coco(tmp_path)
    marker = tmp_path / 'code_ran'
    evil = hostile_checkpoint(tmp_path / 'evil.pth', marker)
    with pytest.raises(SystemExit) as info:
        load_tool('tools/train.py').main(
            [config, '--data-root', data_root, '--work-dir',
             str(tmp_path / 'work'), '--resume', evil])
    line = info.value.code
    assert isinstance(line, str) and '\n' not in line, line
    assert line.startswith(f'error: Refusing to load checkpoint "{evil}"')
    assert not marker.exists()
