"""Configs our tools dump run with upstream's own tools.

A config that ``tools/train.py`` saved in its work dir (an ``--amp`` run on
CPU, a 2-process CPU launch: the shared runs of tests/tool_artifacts.py; a
plain run's dump names a subset of the launch's) names classes of this project
(``CPUAmpOptimWrapper``, ``CPUDistributedDataParallel``, the hooks) and
``custom_imports=['convmlp_mm']``. Importing the package must register every
one of them, so mmdet's and mmseg's own ``tools/train.py`` (shipped in their
packages under ``.mim/tools``) and ``mim train`` run the dumped config:
mmdet's tools/train.py the launch's, ``mim train mmseg`` (mmseg's
tools/train.py under mim) the --amp one.
"""
import os.path as osp
import sys

import mmdet
import mmseg
import pytest
from tool_artifacts import dist_retinanet, semfpn_amp  # noqa: F401

from tools_run import explain, run

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group('tool_runs')]

UPSTREAM_TRAIN = {
    'mmdet': osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                      'train.py'),
    'mmseg': osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools',
                      'train.py'),
}


@pytest.fixture
def dumped_configs(dist_retinanet, semfpn_amp):  # noqa: F811
    """The configs our tools dumped: --amp on CPU (Semantic FPN) and a
    2-process CPU launch (RetinaNet)."""
    return dict(amp=('mmseg', semfpn_amp['config']),
                dist=('mmdet', dist_retinanet['config']))


def test_dumped_configs_name_this_projects_classes(dumped_configs):
    """The two dumps do name what the upstream runs below must find."""
    text = {k: open(path).read() for k, (_, path) in dumped_configs.items()}
    assert "type='CPUAmpOptimWrapper'" in text['amp']
    assert "type='CPUDistributedDataParallel'" in text['dist']
    for dump in text.values():
        assert "imports=[\n        'convmlp_mm'," in dump or \
            "imports=['convmlp_mm'" in dump
        assert "type='AtomicCheckpointHook'" in dump


def test_every_type_in_a_dumped_config_is_registered(dumped_configs, tmp_path):
    """In a fresh process, only the config's custom_imports: every
    ``type=`` of the two dumps resolves in its library's registries."""
    code = (
        'import sys\n'
        'from mmengine.config import Config\n'
        'from mmengine.utils import import_modules_from_strings\n'
        'import mmengine.registry as root\n'
        'import importlib\n'
        'bad = 0\n'
        'for scope, path in zip(sys.argv[1::2], sys.argv[2::2]):\n'
        '    cfg = Config.fromfile(path)\n'
        '    import_modules_from_strings(**cfg.custom_imports)\n'
        '    lib = __import__(scope + ".registry", fromlist=["MODELS"])\n'
        '    importlib.import_module(scope + ".models")\n'
        '    importlib.import_module(scope + ".datasets")\n'
        '    importlib.import_module(scope + ".evaluation")\n'
        '    importlib.import_module(scope + ".engine")\n'
        '    importlib.import_module(scope + ".visualization")\n'
        '    regs = [v for v in vars(lib).values()\n'
        '            if isinstance(v, root.Registry)]\n'
        '    names = set()\n'
        '    def walk(x):\n'
        '        if isinstance(x, dict):\n'
        '            if isinstance(x.get("type"), str): names.add(x["type"])\n'
        # nms=dict(type='nms'): an mmcv op name, not a registered class
        '            for k, v in x.items():\n'
        '                if k != "nms": walk(v)\n'
        '        elif isinstance(x, (list, tuple)):\n'
        '            for v in x: walk(v)\n'
        '    walk(cfg._cfg_dict.to_dict())\n'
        '    missing = sorted(n for n in names if "." not in n and\n'
        '                     not any(r.get(n) for r in regs))\n'
        '    print("types", len(names), "missing", missing)\n'
        '    bad += bool(missing)\n'
        'sys.exit(1 if bad else 0)\n')
    args = [x for pair in dumped_configs.values() for x in pair]
    proc = run([sys.executable, '-c', code, *args], tmp_path, timeout=180)
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.count('missing []') == len(dumped_configs), \
        proc.stdout


def test_upstream_mmdet_train_runs_the_launchs_dumped_config(
        dumped_configs, tmp_path):
    """mmdet's own tools/train.py, one process, on the config the 2-process
    launch dumped (CPUDistributedDataParallel, the hooks, the runner)."""
    scope, path = dumped_configs['dist']
    work = str(tmp_path / 'work')
    proc = run([sys.executable, UPSTREAM_TRAIN[scope], path, '--work-dir',
                work], tmp_path)
    assert proc.returncode == 0, explain(proc)
    out = proc.stdout + proc.stderr
    assert '(train)' in out  # mmengine's loop logged a training iteration
    assert osp.isfile(osp.join(work, 'epoch_1.pth')), explain(proc)


def test_mim_train_mmseg_runs_the_amp_dumped_config(dumped_configs,
                                                    tmp_path):
    """``mim train mmseg`` (mmseg's tools/train.py) on the --amp dump
    (CPUAmpOptimWrapper)."""
    scope, path = dumped_configs['amp']
    work = str(tmp_path / 'work')
    proc = run([sys.executable, '-m', 'mim', 'train', scope, path, '--gpus',
                '0', '--work-dir', work], tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert osp.isfile(osp.join(work, 'iter_2.pth')), explain(proc)
