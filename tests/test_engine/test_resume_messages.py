"""What tools/train.py says when it resumes, or does not: where the
checkpoint came from; a run that is already complete (exit 0, nothing
trained, nothing in the work dir changed); one resumed past a lowered
max_epochs (refused); a last_checkpoint naming a deleted file; --resume
with nothing to resume; a resume with another batch size; a run refused
for a busy work dir, which changes nothing there.

The tool is called in process where it stops before training, on a work
dir whose checkpoints hold what these decisions read (mmengine's ``meta``:
epoch and iteration); one end-to-end test trains, resumes with another
batch size and then finds the run complete."""
import os
import os.path as osp
import shutil
import uuid

import pytest
import torch
from mmengine.logging import MMLogger

from convmlp_mm.checkpoint.safe_loading import safe_torch_load
from convmlp_mm.config import prepare_train_config
from convmlp_mm.engine.runner.train_data import train_data_changes
from convmlp_mm.engine.workdir_lock import WorkDirLock

from helpers import load_tool
from tools_run import explain, python_tool, run
from toy_runner import write_tiny_coco

TRAIN = 'tools/train.py'


@pytest.fixture
def finished(tmp_path):
    """The work dir of a 2-epoch run of 2 iterations each (4 images, batch
    2), as far as resuming reads it: epoch_1.pth and epoch_2.pth with
    mmengine's meta, last_checkpoint naming epoch_2.pth, the dumped config;
    and its config and data."""
    data_root, config = write_tiny_coco(tmp_path)
    work_dir = tmp_path / 'finished'
    work_dir.mkdir()
    for epoch in (1, 2):
        torch.save(dict(meta=dict(epoch=epoch, iter=2 * epoch),
                        state_dict={}), work_dir / f'epoch_{epoch}.pth')
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_2.pth'))
    shutil.copy(config, work_dir)
    return dict(config=config, data=data_root, work_dir=str(work_dir))


def snapshot(root: str) -> dict:
    """Every file and folder under ``root`` with its size and mtime: equal
    snapshots mean nothing was created, removed or rewritten."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = osp.join(folder, name)
            stat = os.stat(path)
            found[osp.relpath(path, root)] = (stat.st_size, stat.st_mtime_ns)
    return found


def train_args(finished, work_dir, *extra):
    return [finished['config'], '--data-root', finished['data'],
            '--work-dir', work_dir, *extra]


def error_of(argv) -> str:
    with pytest.raises(SystemExit) as info:
        load_tool(TRAIN).main(argv)
    assert isinstance(info.value.code, str), info.value.code
    return info.value.code


def fresh_console():
    # print_log(logger='current') writes through the newest MMLogger; one
    # made now writes to this test's captured stdout.
    MMLogger.get_instance(f'test_resume_{uuid.uuid4().hex}')


def test_complete_run_says_so_trains_nothing_changes_nothing(
        finished, tmp_path, capfd):
    work_dir = finished['work_dir']
    before = snapshot(work_dir)
    fresh_console()
    assert load_tool(TRAIN).main(train_args(
        finished, work_dir, '--cfg-options', 'train_cfg.max_epochs=2')) \
        is None  # exit status 0
    out = capfd.readouterr().out
    last = osp.join(work_dir, 'epoch_2.pth')
    assert f'Nothing to train: the run is complete ({last} is at epoch 2 ' \
        '(iteration 4), train_cfg.max_epochs=2)' in out
    assert 'Resuming' not in out and 'Epoch(train)' not in out
    assert snapshot(work_dir) == before


def test_resume_past_a_lowered_max_epochs_is_refused(finished, tmp_path):
    work_dir = finished['work_dir']
    before = snapshot(work_dir)
    line = error_of(train_args(finished, work_dir, '--cfg-options',
                               'train_cfg.max_epochs=1'))
    last = osp.join(work_dir, 'epoch_2.pth')
    assert line.startswith(
        f'error: {last}, the checkpoint this run resumes from, is at epoch 2 '
        '(iteration 4), past train_cfg.max_epochs=1'), line
    assert '--no-resume' in line
    assert snapshot(work_dir) == before


def test_last_checkpoint_naming_a_deleted_file_names_the_marker(
        finished, tmp_path):
    work_dir = finished['work_dir']
    gone = osp.join(work_dir, 'epoch_2.pth')
    os.remove(gone)
    marker = osp.join(work_dir, 'last_checkpoint')
    line = error_of(train_args(finished, work_dir))
    assert line == (
        f'error: {marker} names {gone}, which does not exist (deleted or '
        'moved), so the run cannot resume from it. Restore that file, or '
        f'write the path of an existing checkpoint into {marker} (the '
        f'newest there: {osp.join(work_dir, "epoch_1.pth")}), or pass '
        '--no-resume to start afresh.')


def test_resume_flag_with_nothing_to_resume_starts_afresh_and_says_so(
        finished, tmp_path, capfd):
    work_dir = str(tmp_path / 'empty')
    args = load_tool(TRAIN).parse_args(train_args(finished, work_dir,
                                                  '--resume'))
    fresh_console()
    cfg = prepare_train_config(args)
    assert f'--resume: nothing to resume, {work_dir} has no last_checkpoint'\
        '; training from scratch.' in capfd.readouterr().out
    assert not cfg.resume  # mmengine looks for no checkpoint to resume
    assert cfg.load_from is None  # the config's own start


@pytest.mark.e2e
def test_resume_with_another_batch_size_says_so_then_the_run_is_complete(
        tmp_path, capfd):
    data_root, config = write_tiny_coco(tmp_path)
    work_dir = str(tmp_path / 'work')
    argv = [config, '--data-root', data_root, '--work-dir', work_dir]
    first = run(python_tool('train.py', *argv, '--cfg-options',
                            'train_cfg.max_epochs=1'), tmp_path, timeout=300)
    assert first.returncode == 0, explain(first)
    epoch_1 = osp.join(work_dir, 'epoch_1.pth')
    # The config: batch 2 per process, one process; 4 training images.
    assert safe_torch_load(epoch_1, 'x')['meta']['train_data'] == dict(
        batch_size=2, world_size=1, num_samples=4, iters_per_epoch=2,
        sources=[osp.join(data_root, 'annotations',
                          'instances_train2017.json')])

    batch_1 = ['--cfg-options', 'train_cfg.max_epochs=2',
               'train_dataloader.batch_size=1']
    second = run(python_tool('train.py', *argv, *batch_1), tmp_path,
                 timeout=300)
    assert second.returncode == 0, explain(second)
    log = second.stdout + second.stderr
    marker = osp.join(work_dir, 'last_checkpoint')
    assert f'Resuming from {epoch_1}, which {marker} names' in log
    assert 'Resumed with batch size 1 per process (checkpoint: 2): the run ' \
        'continues after iteration 2, but the data order from there on ' \
        'differs from an uninterrupted run' in log
    assert 'Epoch(train) [2][4/4]' in log  # epoch 2 at batch 1

    # The same command again: 2 + 4 iterations are done.
    before = snapshot(work_dir)
    fresh_console()
    assert load_tool(TRAIN).main(argv + batch_1) is None
    assert 'Nothing to train: the run is complete (' \
        f'{osp.join(work_dir, "epoch_2.pth")} is at epoch 2 (iteration 6)' \
        in capfd.readouterr().out
    assert snapshot(work_dir) == before


def test_train_data_changes_names_each_change():
    saved = dict(batch_size=2, world_size=2, num_samples=8,
                 iters_per_epoch=2, sources=['a.json'])
    assert train_data_changes(saved, dict(saved), 3) is None
    assert train_data_changes(None, dict(saved), 3) is None  # older file
    line = train_data_changes(saved, dict(saved, world_size=1,
                                          num_samples=9,
                                          sources=['b.json']), 3)
    assert line.startswith(
        'Resumed with 1 process (checkpoint: 2), 9 training samples '
        '(checkpoint: 8), training data b.json (checkpoint: a.json): the '
        'run continues after iteration 3'), line


def test_run_refused_for_a_busy_work_dir_changes_nothing(finished, tmp_path):
    work_dir = finished['work_dir']
    holder = WorkDirLock(work_dir).acquire()
    before = snapshot(work_dir)
    try:
        line = error_of(train_args(finished, work_dir, '--cfg-options',
                                   'train_cfg.max_epochs=3',
                                   'train_dataloader.batch_size=1'))
    finally:
        holder.release()
    assert line.startswith(f'error: work dir {work_dir} is in use by '
                           f'another training run (PID {os.getpid()}'), line
    # No timestamp folder, no log, the dumped config as it was.
    assert snapshot(work_dir) == before
