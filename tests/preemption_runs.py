"""Tiny versions of the paper configs with their randomness on (random flip;
random resize, crop, flip and photometric distortion; drop path 0.1;
shuffled data) for the preemption and resume tests: a ConvMLP of 0.1M
parameters on 64x48 COCO images and 64x64 ADE20K crops.

Each config's uninterrupted run is made once per test run
(:func:`reference`, a shared artifact) and read by every test that compares
an interrupted run with it. Interruptions are placed exactly by
:class:`FaultAt`, a hook the interrupted run's config adds (custom_imports
of this module): a real signal to the real ``tools/train.py`` process, at a
fixed iteration or in the middle of a fixed checkpoint's write, not at a
moment that depends on how fast the machine is."""
import os
import os.path as osp
import signal
import sys
from typing import Dict, List, Optional

from mmengine.fileio import LocalBackend
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from convmlp_mm.checkpoint.safe_loading import safe_torch_load
from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset

from helpers import REPO, TESTS

TINY_ARCH = ('arch=dict(_delete_=True, channels=16, conv_blocks=1, '
             'blocks=[1, 1, 1], dims=[32, 48, 64], mlp_ratio=1)')

DETECTION = f'''
_base_ = '{REPO}/configs/detection/retinanet_convmlp_s_fpn_1x_coco.py'
metainfo = dict(classes=('circle', 'square', 'triangle'))
model = dict(
    backbone=dict({TINY_ARCH}, init_cfg=None),
    neck=dict(in_channels=[16, 32, 48, 64], out_channels=32),
    bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32,
                   stacked_convs=1))
# The paper pipeline (Resize, RandomFlip 0.5) at 64x48.
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(metainfo=metainfo, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(64, 48), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')]))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_epochs=2, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
randomness = dict(seed=0)
'''

SEGMENTATION = f'''
_base_ = '{REPO}/configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py'
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict({TINY_ARCH}, init_cfg=None),
    neck=dict(in_channels=[16, 32, 48, 64], out_channels=32),
    decode_head=dict(in_channels=[32, 32, 32, 32], channels=32))
# The paper pipeline (RandomResize 0.5-2, RandomCrop cat_max_ratio 0.75,
# RandomFlip, PhotoMetricDistortion) around 128x128 images, 64x64 crops.
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', reduce_zero_label=True),
        dict(type='RandomResize', scale=(128, 128), ratio_range=(0.5, 2.0),
             keep_ratio=True),
        dict(type='RandomCrop', crop_size=(64, 64), cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs')]))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters=8, val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=4))
randomness = dict(seed=0)
'''

#: 8 images, batch 2: 4 iterations per epoch, 2 epochs.
DETECTION_ITERS_PER_EPOCH = 4


def write_detection(root) -> tuple:
    """8 COCO images (4 iterations of 2 per epoch) and the config."""
    data = make_coco_dataset(osp.join(str(root), 'coco'), num_train=8,
                             num_val=2, image_size=(64, 48),
                             classes=('circle', 'square', 'triangle'))
    config = osp.join(str(root), 'retinanet_tiny_random.py')
    with open(config, 'w') as f:
        f.write(DETECTION)
    return data, config


def write_segmentation(root) -> tuple:
    data = make_ade20k_dataset(osp.join(str(root), 'ade'), num_train=8,
                               num_val=2, image_size=(128, 128))
    config = osp.join(str(root), 'fpn_tiny_random.py')
    with open(config, 'w') as f:
        f.write(SEGMENTATION)
    return data, config


# tests/ on the path of every run (custom_imports of this module), also
# under torchrun, whose workers start new interpreters.
ENV = dict(os.environ, PYTHONUNBUFFERED='1',
           PYTHONPATH=os.pathsep.join(
               [TESTS] + [p for p in os.environ.get('PYTHONPATH', '').split(
                   os.pathsep) if p]))


def train_command(config: str, data: str, work_dir, *extra) -> List[str]:
    return [sys.executable, osp.join(REPO, 'tools', 'train.py'), config,
            '--data-root', data, '--work-dir', str(work_dir), *extra]


def run_tool(cmd, tmp_path, timeout=300, env: Optional[Dict] = None):
    """``cmd`` to its end (tools/X.py through the fork server); the
    CompletedProcess, both outputs as text."""
    from tools_run import run
    return run(cmd, tmp_path, timeout=timeout, env=dict(ENV, **(env or {})))


def run_to_end(cmd, tmp_path, timeout=300, env=None) -> str:
    proc = run_tool(cmd, tmp_path, timeout, env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return log


# --- the uninterrupted references: one per config per test run -----------
REFERENCES = dict(
    detection=(write_detection, 'epoch_2.pth'),
    segmentation=(write_segmentation, 'iter_8.pth'),
)


def reference(tmp_path_factory, name: str) -> dict:
    """The config ``name`` ('detection' or 'segmentation'), its data, and
    its uninterrupted run's final checkpoint (``weights``), made once per
    test run (tests/artifacts.py); read only."""
    from artifacts import shared_artifact
    write, final = REFERENCES[name]

    def build(folder):
        data, config = write(folder)
        work_dir = osp.join(folder, 'uninterrupted')
        run_to_end(train_command(config, data, work_dir), folder)
        return dict(data=data, config=config, work_dir=work_dir,
                    weights=osp.join(work_dir, final))
    return shared_artifact(tmp_path_factory, f'reference_{name}', build)


# --- placed faults --------------------------------------------------------
@HOOKS.register_module(force=True)
class FaultAt(Hook):
    """A test's interruption at a fixed point of a training run.

    Sends ``signum`` (a name) to this process at the start of iteration
    ``at`` (1-based: ``at=6`` is the sixth iteration, five done), at its
    end (``at_end``: its forward and backward done, before any other
    hook's ``after_train_iter``), or, with
    ``during_write``, half-way through writing the checkpoint whose file
    name contains it: half of the bytes are on disk when the signal comes.
    SIGKILL ends the process there; a catchable signal is handled (by
    PreemptionHook) and the write goes on. ``rank``: only in that process
    of a distributed run. ``pid_dir``: each rank writes its pid to
    ``rank{R}.pid`` there when training starts."""

    priority = 'HIGHEST'

    def __init__(self, signum='SIGTERM', at=None, at_end=None,
                 during_write=None, rank=None, pid_dir=None):
        self.signum = getattr(signal, signum)
        self.at, self.at_end, self.during_write = at, at_end, during_write
        self.rank, self.pid_dir = rank, pid_dir

    def _mine(self) -> bool:
        from mmengine.dist import get_rank
        return self.rank is None or get_rank() == self.rank

    def before_train(self, runner) -> None:
        from mmengine.dist import get_rank
        if self.pid_dir:
            with open(osp.join(self.pid_dir, f'rank{get_rank()}.pid'),
                      'w') as f:
                f.write(str(os.getpid()))
        if self.during_write and self._mine():
            put, name, signum = LocalBackend.put, self.during_write, \
                self.signum

            def put_with_signal(backend, obj, filepath):
                if name not in osp.basename(str(filepath)):
                    return put(backend, obj, filepath)
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                    f.flush()
                    os.fsync(f.fileno())
                print(f'FAULT: {signal.Signals(signum).name} half-way '
                      f'through {filepath}', flush=True)
                os.kill(os.getpid(), signum)
                LocalBackend.put = put  # once
                return put(backend, obj, filepath)

            LocalBackend.put = put_with_signal

    def _send(self, runner, at, where) -> None:
        if at is not None and runner.iter + 1 == at and self._mine():
            print(f'FAULT: {signal.Signals(self.signum).name} at the {where} '
                  f'of iteration {at}', flush=True)
            os.kill(os.getpid(), self.signum)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._send(runner, self.at, 'start')

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self._send(runner, self.at_end, 'end')


def fault_config(config: str, folder, **fault) -> str:
    """A config that is ``config`` plus :class:`FaultAt` (``fault`` its
    arguments), written under ``folder``; the run it starts is interrupted
    there, and the plain ``config`` in the same work dir continues it."""
    from mmengine.config import Config
    base = Config.fromfile(config)
    imports = list(base.get('custom_imports', {}).get('imports', []))
    hooks = [h.to_dict() if hasattr(h, 'to_dict') else dict(h)
             for h in base.get('custom_hooks') or []]
    hooks.append(dict(type='FaultAt', **fault))
    path = osp.join(str(folder), 'fault_' + osp.basename(config))
    with open(path, 'w') as f:
        f.write(f'_base_ = {config!r}\n'
                'custom_imports = dict(imports='
                f'{imports + ["preemption_runs"]!r}, '
                'allow_failed_imports=False)\n'
                f'custom_hooks = {hooks!r}\n')
    return path


def last_checkpoint(work_dir) -> Optional[str]:
    path = osp.join(str(work_dir), 'last_checkpoint')
    if not osp.exists(path):
        return None
    with open(path) as f:
        return f.read().strip()


def weights(path) -> dict:
    return safe_torch_load(str(path), str(path))['state_dict']


def max_abs_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item()
               for k in a if a[k].is_floating_point())


def two_process_reference(tmp_path_factory) -> dict:
    """The uninterrupted run for the two-process tests (one node of two
    processes, tests/test_engine/test_exact_resume.py; two nodes of one,
    tests/test_tools/test_multinode.py: the same world size and ranks):
    the tiny RetinaNet of :func:`write_detection` (paper randomness on) on
    12 images, 2 processes x 2 images (3 iterations per epoch, 2 epochs),
    by ./dist_detection.sh. ``config``, ``data``, ``weights``; made once
    per test run, read only."""
    import subprocess

    from artifacts import shared_artifact

    from tools_run import explain, free_port, tool_env

    def build(folder):
        _, config = write_detection(folder)
        data = make_coco_dataset(osp.join(folder, 'coco12'), num_train=12,
                                 num_val=2, image_size=(64, 48),
                                 classes=('circle', 'square', 'triangle'))
        work_dir = osp.join(folder, 'uninterrupted')
        env = tool_env(folder, dict(ENV, PORT=str(free_port())))
        for name in ('NNODES', 'NODE_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
            env.pop(name, None)
        proc = subprocess.run(
            [osp.join(REPO, 'dist_detection.sh'), config, '2', data,
             '--work-dir', work_dir], cwd=REPO, env=env, timeout=240,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.returncode == 0, explain(proc)
        return dict(config=config, data=data,
                    weights=osp.join(work_dir, 'epoch_2.pth'))
    return shared_artifact(tmp_path_factory, 'reference_detection_2procs',
                           build)
