"""Shared fixtures: the run's thread budget, and the artifacts that more than
one test reads (tests/artifacts.py): tiny datasets, trained models."""
import os

# One BLAS/OpenMP thread per pytest-xdist worker (two workers on two cores):
# oversubscribed threads made a 13 s training take 100 s. Set before torch is
# imported here, and inherited by every tool run and subprocess.
_workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
THREADS = str(max(1, (os.cpu_count() or 1) // _workers))
for _name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_name] = THREADS

import json  # noqa: E402
import os.path as osp  # noqa: E402
from collections import OrderedDict  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from artifacts import shared_artifact  # noqa: E402

from helpers import DATA, make_official_state_dict  # noqa: E402
from tools_run import ADE_SIZE, CLASSES, COCO_SIZE, explain, python_tool, run  # noqa: E402  # noqa: E402

torch.set_num_threads(int(THREADS))

LEARNING_CONFIGS = osp.join(DATA, 'configs')


@pytest.fixture
def official_checkpoint(tmp_path):
    """Factory writing an official-layout checkpoint; returns (path, state)."""

    def make(arch='s', wrap=None, prefix='', seed=0):
        state = make_official_state_dict(arch, seed)
        saved = OrderedDict((prefix + k, v) for k, v in state.items())
        if wrap:
            saved = {wrap: saved}
        path = tmp_path / f'convmlp_{arch}_{wrap or "plain"}_{seed}.pth'
        torch.save(saved, path)
        return str(path), state

    return make


def _dataset(tmp_path_factory, name, make, **kwargs):
    def build(folder):
        return dict(root=make(osp.join(folder, 'data'), **kwargs))
    return shared_artifact(tmp_path_factory, name, build)['root']


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory):
    """8 training and 2 validation images of 128x96, the 3 shapes; read
    only (copy it to change it)."""
    from convmlp_mm.datasets import make_coco_dataset
    return _dataset(tmp_path_factory, 'coco', make_coco_dataset,
                    num_train=8, num_val=2, image_size=COCO_SIZE,
                    classes=CLASSES)


@pytest.fixture(scope='session')
def ade_root(tmp_path_factory):
    """4 training and 2 validation images of 128x128 in the ADE20K layout
    (labels 1-3, 0 ignored); read only."""
    from convmlp_mm.datasets import make_ade20k_dataset
    return _dataset(tmp_path_factory, 'ade', make_ade20k_dataset,
                    num_train=4, num_val=2, image_size=ADE_SIZE)


def _last_metrics(work_dir: str) -> dict:
    """The last validation line of the run's scalars.json."""
    found = []
    for folder, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(folder, 'scalars.json')) as f:
                found += [json.loads(line) for line in f if line.strip()]
    metrics = [rec for rec in found
               if any(k.endswith(('bbox_mAP', 'mIoU')) for k in rec)]
    assert metrics, f'no validation metrics logged under {work_dir}'
    return metrics[-1]


def _learned(tmp_path_factory, name, config, make, data_kwargs,
             checkpoint_name):
    def build(folder):
        data_root = make(osp.join(folder, 'data'), **data_kwargs)
        work_dir = osp.join(folder, 'work')
        proc = run(python_tool('train.py', config, '--work-dir', work_dir,
                               '--data-root', data_root), folder,
                   timeout=600)
        assert proc.returncode == 0, explain(proc)
        return dict(config=config, data_root=data_root, work_dir=work_dir,
                    checkpoint=osp.join(work_dir, checkpoint_name),
                    metrics=_last_metrics(work_dir))
    return shared_artifact(tmp_path_factory, name, build)


@pytest.fixture(scope='session')
def learned_detector(tmp_path_factory):
    """RetinaNet-ConvMLP (tiny) trained for 24 epochs on 64 built-in images
    (tests/data/configs/retinanet_tiny_learns_shapes.py): a model whose
    mAP means something. Keys: config, data_root, work_dir, checkpoint,
    metrics (its final validation)."""
    from convmlp_mm.datasets import make_coco_dataset
    return _learned(
        tmp_path_factory, 'learned_detector',
        osp.join(LEARNING_CONFIGS, 'retinanet_tiny_learns_shapes.py'),
        make_coco_dataset,
        dict(num_train=64, num_val=32, image_size=(128, 96)),
        'epoch_24.pth')


@pytest.fixture(scope='session')
def learned_segmentor(tmp_path_factory):
    """Semantic FPN-ConvMLP (tiny) trained for 400 iterations on 64
    built-in images (tests/data/configs/fpn_tiny_learns_shapes.py)."""
    from convmlp_mm.datasets import make_ade20k_dataset
    return _learned(
        tmp_path_factory, 'learned_segmentor',
        osp.join(LEARNING_CONFIGS, 'fpn_tiny_learns_shapes.py'),
        make_ade20k_dataset,
        dict(num_train=64, num_val=32, image_size=(64, 64)),
        'iter_400.pth')
