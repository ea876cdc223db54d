"""Configs our tools dump run with upstream's own tools.

A config that ``tools/train.py`` saved in its work dir (a plain run, an
``--amp`` run on CPU, a 2-process CPU launch) names classes of this project
(``CPUAmpOptimWrapper``, ``CPUDistributedDataParallel``, the hooks) and
``custom_imports=['convmlp_mm']``. Importing the package must register every
one of them, so mmdet's and mmseg's own ``tools/train.py`` (shipped in their
packages under ``.mim/tools``) and ``mim train`` run the dumped config.
"""
import os.path as osp
import sys

import mmdet
import mmseg
import pytest

from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset

from tools_run import (
    ADE_SIZE,
    CLASSES,
    COCO_SIZE,
    REPO,
    RETINANET,
    SEMFPN,
    detection_options,
    explain,
    free_port,
    python_tool,
    run,
    segmentation_options,
)

UPSTREAM_TRAIN = {
    'mmdet': osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                      'train.py'),
    'mmseg': osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                      'train.py'),
}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('data')
    # 4 training images: 2 processes x batch 2 -> one iteration each.
    return dict(
        coco=make_coco_dataset(str(root / 'coco'), num_train=4, num_val=2,
                               image_size=COCO_SIZE, classes=CLASSES),
        ade=make_ade20k_dataset(str(root / 'ade'), num_train=2, num_val=2,
                                image_size=ADE_SIZE))


def _dumped(work_dir: str, config: str) -> str:
    path = osp.join(work_dir, osp.basename(config))
    assert osp.isfile(path), f'no dumped config at {path}'
    return path


@pytest.fixture(scope='module')
def dumped_configs(data, tmp_path_factory):
    """The configs our tools dump: plain (RetinaNet), --amp on CPU
    (Semantic FPN) and a 2-process CPU launch (RetinaNet)."""
    tmp = tmp_path_factory.mktemp('ours')
    det_opts = detection_options(RETINANET) + ['train_cfg.val_interval=2']
    seg_opts = segmentation_options(max_iters=1) + [
        'train_cfg.val_interval=2']
    configs = {}

    work = str(tmp / 'plain')
    proc = run(python_tool('train.py', RETINANET, '--data-root',
                           data['coco'], '--work-dir', work,
                           '--cfg-options', *det_opts), tmp)
    assert proc.returncode == 0, explain(proc)
    configs['plain'] = ('mmdet', _dumped(work, RETINANET))

    work = str(tmp / 'amp')
    proc = run(python_tool('train.py', SEMFPN, '--data-root', data['ade'],
                           '--work-dir', work, '--amp', '--cfg-options',
                           *seg_opts), tmp)
    assert proc.returncode == 0, explain(proc)
    configs['amp'] = ('mmseg', _dumped(work, SEMFPN))

    work = str(tmp / 'dist')
    proc = run([osp.join(REPO, 'dist_detection.sh'), RETINANET, '2',
                data['coco'], '--work-dir', work, '--cfg-options', *det_opts],
               tmp, env={'PORT': str(free_port()), 'NNODES': '1',
                         'NODE_RANK': '0', 'MASTER_ADDR': '127.0.0.1'})
    assert proc.returncode == 0, explain(proc)
    configs['dist'] = ('mmdet', _dumped(work, RETINANET))
    return configs


def test_dumped_configs_name_this_projects_classes(dumped_configs):
    """The three dumps do name what the upstream runs below must find."""
    text = {k: open(path).read() for k, (_, path) in dumped_configs.items()}
    assert "type='CPUAmpOptimWrapper'" in text['amp']
    assert "type='CPUDistributedDataParallel'" in text['dist']
    for dump in text.values():
        assert "imports=[\n        'convmlp_mm'," in dump or \
            "imports=['convmlp_mm'" in dump
        assert "type='AtomicCheckpointHook'" in dump


def test_every_type_in_a_dumped_config_is_registered(dumped_configs, tmp_path):
    """In a fresh process, only the config's custom_imports: every
    ``type=`` of the three dumps resolves in its library's registries."""
    code = (
        'import sys\n'
        'from mmengine.config import Config\n'
        'from mmengine.utils import import_modules_from_strings\n'
        'import mmengine.registry as root\n'
        'scope, path = sys.argv[1], sys.argv[2]\n'
        'cfg = Config.fromfile(path)\n'
        'import_modules_from_strings(**cfg.custom_imports)\n'
        'lib = __import__(scope + ".registry", fromlist=["MODELS"])\n'
        'import importlib\n'
        'importlib.import_module(scope + ".models")\n'
        'importlib.import_module(scope + ".datasets")\n'
        'importlib.import_module(scope + ".evaluation")\n'
        'importlib.import_module(scope + ".engine")\n'
        'importlib.import_module(scope + ".visualization")\n'
        'regs = [v for v in vars(lib).values()\n'
        '        if isinstance(v, root.Registry)]\n'
        'names = set()\n'
        'def walk(x):\n'
        '    if isinstance(x, dict):\n'
        '        if isinstance(x.get("type"), str): names.add(x["type"])\n'
        # nms=dict(type='nms'): an mmcv op name, not a registered class
        '        for k, v in x.items():\n'
        '            if k != "nms": walk(v)\n'
        '    elif isinstance(x, (list, tuple)):\n'
        '        for v in x: walk(v)\n'
        'walk(cfg._cfg_dict.to_dict())\n'
        'missing = sorted(n for n in names if "." not in n and\n'
        '                 not any(r.get(n) for r in regs))\n'
        'print("types", len(names), "missing", missing)\n'
        'sys.exit(1 if missing else 0)\n')
    for key, (scope, path) in dumped_configs.items():
        proc = run([sys.executable, '-c', code, scope, path], tmp_path,
                   timeout=180)
        assert proc.returncode == 0, f'{key}: {explain(proc)}'
        assert 'missing []' in proc.stdout


@pytest.mark.parametrize('kind', ['plain', 'amp', 'dist'])
def test_upstream_train_runs_dumped_config(dumped_configs, kind, tmp_path):
    scope, path = dumped_configs[kind]
    work = str(tmp_path / 'work')
    proc = run([sys.executable, UPSTREAM_TRAIN[scope], path, '--work-dir',
                work], tmp_path)
    assert proc.returncode == 0, explain(proc)
    out = proc.stdout + proc.stderr
    assert '(train)' in out  # mmengine's loop logged a training iteration
    checkpoint = 'iter_1.pth' if scope == 'mmseg' else 'epoch_1.pth'
    assert osp.isfile(osp.join(work, checkpoint)), explain(proc)


@pytest.mark.parametrize('kind', ['amp', 'dist'])
def test_mim_train_runs_dumped_config(dumped_configs, kind, tmp_path):
    scope, path = dumped_configs[kind]
    work = str(tmp_path / 'work')
    proc = run([sys.executable, '-m', 'mim', 'train', scope, path, '--gpus',
                '0', '--work-dir', work], tmp_path)
    assert proc.returncode == 0, explain(proc)
    checkpoint = 'iter_1.pth' if scope == 'mmseg' else 'epoch_1.pth'
    assert osp.isfile(osp.join(work, checkpoint)), explain(proc)
