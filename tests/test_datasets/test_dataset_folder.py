"""The generator's folder: a damaged copy of the same dataset is rebuilt to
the same bytes, a folder holding anything else or a damaged marker is
refused, and a generator killed with SIGKILL mid-way leaves nothing that
the next run does not remove."""
import json
import os
import os.path as osp
import signal
import time

import pytest
from tool_runner import start_tool

from convmlp_mm.datasets import (
    MARKER,
    SyntheticDatasetError,
    make_ade20k_dataset,
    make_coco_dataset,
)

from helpers import REPO, tree_digest
from tools_run import python_tool, tool_env

SMALL = dict(num_train=4, num_val=2, image_size=(64, 48))


def test_deleted_image_is_rebuilt(tmp_path):
    root = make_coco_dataset(tmp_path / 'coco', **SMALL)
    intact = tree_digest(root)
    os.remove(osp.join(root, 'train2017', '000000000002.jpg'))
    assert make_coco_dataset(tmp_path / 'coco', **SMALL) == root
    assert tree_digest(root) == intact
    assert sorted(os.listdir(tmp_path)) == ['coco']


def test_truncated_json_is_rebuilt(tmp_path):
    root = make_ade20k_dataset(tmp_path / 'ade', **SMALL)
    intact = tree_digest(root)
    mask = osp.join(root, 'annotations', 'training', 'ADE_train_00000001.png')
    with open(mask, 'r+b') as f:
        f.truncate(10)
    make_ade20k_dataset(tmp_path / 'ade', **SMALL)
    assert tree_digest(root) == intact
    coco = make_coco_dataset(tmp_path / 'coco', **SMALL)
    ann = osp.join(coco, 'annotations', 'instances_val2017.json')
    with open(ann, 'r+b') as f:
        f.truncate(os.path.getsize(ann) // 2)
    make_coco_dataset(tmp_path / 'coco', **SMALL)
    with open(ann) as f:
        assert len(json.load(f)['images']) == SMALL['num_val']


def test_marker_of_another_seed_or_size_is_refused(tmp_path):
    root = make_coco_dataset(tmp_path / 'coco', **SMALL)
    with pytest.raises(SyntheticDatasetError, match='other arguments'):
        make_coco_dataset(root, **dict(SMALL, image_size=(96, 64)))
    with pytest.raises(SyntheticDatasetError, match='other arguments'):
        make_coco_dataset(root, seed=5, **SMALL)


def test_damaged_marker_and_foreign_files_are_refused(tmp_path):
    root = make_coco_dataset(tmp_path / 'coco', **SMALL)
    notes = osp.join(root, 'train2017', 'notes.txt')
    with open(notes, 'w') as f:
        f.write('mine')
    with pytest.raises(SyntheticDatasetError,
                       match='files the generator did not write'):
        make_coco_dataset(root, **SMALL)
    assert osp.isfile(notes)  # nothing of the user's is deleted
    marker = osp.join(root, MARKER)
    with open(marker, 'r+b') as f:
        f.truncate(20)
    with pytest.raises(SyntheticDatasetError, match=f'damaged {MARKER}'):
        make_coco_dataset(root, **SMALL)


@pytest.mark.e2e
def test_sigkill_mid_generation_leaves_nothing_after_next_run(tmp_path):
    """tools/make_dataset.py as its own process (a fork of the preloaded
    tool server, tests/tool_runner.py), killed with SIGKILL mid-way."""
    cmd = python_tool('make_dataset.py', 'coco', str(tmp_path / 'coco'),
                      '--num-train', '2000', '--num-val', '1',
                      '--image-size', '256', '192')
    proc = start_tool(cmd, REPO, tool_env(tmp_path))
    try:
        deadline = time.monotonic() + 120
        staging = []
        while time.monotonic() < deadline and not any(
                os.listdir(dirpath) for dirpath in staging):
            staging = [osp.join(tmp_path, e) for e in os.listdir(tmp_path)
                       if e.startswith('.coco.partial-')]
            staging = [osp.join(s, 'train2017') for s in staging
                       if osp.isdir(osp.join(s, 'train2017'))]
            time.sleep(0.05)
        assert staging, 'the generator never started writing'
    finally:
        proc.kill_group()
    assert proc.returncode == -signal.SIGKILL
    left = [e for e in os.listdir(tmp_path) if e != 'torch_home']
    assert [e for e in left if e.startswith('.coco.partial-')]  # stale
    assert 'coco' not in left  # never a half-written dataset in place
    make_coco_dataset(tmp_path / 'coco', **SMALL)
    assert [e for e in os.listdir(tmp_path) if e != 'torch_home'] == ['coco']
