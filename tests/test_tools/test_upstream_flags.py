"""Upstream's tool interface: tools/test.py --show/--wait-time/--tta (with
mmdet's and mmseg's TTA settings), tools/train.py --tensorboard and
--backbone-checkpoint, tools/dist_train.sh CONFIG GPUS [args] (no task word,
no DATA_ROOT when the config names its data) and tools/dist_test.sh."""
import glob
import os
import os.path as osp
import subprocess

import pytest
from mmengine.config import Config

from convmlp_mm.config import (
    enable_tta,
    prepare_test_config,
    prepare_train_config,
)
from convmlp_mm.datasets import make_coco_dataset
from convmlp_mm.errors import ConfigError

import helpers
from tools_run import (
    MASKRCNN,
    REPO,
    RETINANET,
    SEMFPN,
    explain,
    free_port,
    tool_env,
)

DEMO_RETINANET = 'configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py'
DEMO_SEMFPN = 'configs/demo/fpn_convmlp_s_demo_shapes.py'


def tool_test_cfg(*argv):
    args = helpers.load_tool('tools/test.py').parse_args(list(argv))
    return prepare_test_config(args)


def train_cfg(*argv):
    args = helpers.load_tool('tools/train.py').parse_args(list(argv))
    return prepare_train_config(args)


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    """A folder where the demo config finds its data by itself
    (data/synthetic_coco/, relative to the current folder)."""
    folder = tmp_path_factory.mktemp('demo')
    make_coco_dataset(str(folder / 'data' / 'synthetic_coco'),
                      num_train=4, num_val=2, image_size=(64, 48))
    for name in ('tools', 'configs'):
        os.symlink(osp.join(REPO, name), folder / name)
    return folder


def test_show_and_wait_time_set_the_visualization_hook(demo_data,
                                                       monkeypatch):
    monkeypatch.chdir(demo_data)
    # --show is refused without a display (test_documented_flags.py).
    monkeypatch.setenv('DISPLAY', ':0')
    cfg = tool_test_cfg(DEMO_RETINANET, 'x.pth', '--show', '--wait-time', '5')
    hook = cfg.default_hooks.visualization
    # mmdet's tools/test.py: draw, show, wait_time from --wait-time.
    assert (hook.draw, hook.show, hook.wait_time) == (True, True, 5.0)


def test_tta_for_retinanet_is_mmdets_retinanet_tta():
    # The paper config; the demo configs have TTA at their own scale
    # (tests/test_tools/test_documented_flags.py).
    cfg = Config.fromfile(osp.join(REPO, RETINANET))
    enable_tta(cfg)
    assert cfg.model.type == 'DetTTAModel'
    assert cfg.model.module.type == 'RetinaNet'
    # mmdet 3.3 configs/retinanet/retinanet_tta.py: three scales x flip,
    # merged by NMS at IoU 0.5.
    assert cfg.model.tta_cfg == dict(
        nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
    tta = cfg.test_dataloader.dataset.pipeline[-1]
    assert tta.type == 'TestTimeAug'
    assert [t['scale'] for t in tta.transforms[0]] == [
        (1333, 800), (666, 400), (2000, 1200)]
    assert [t['prob'] for t in tta.transforms[1]] == [1.0, 0.0]


def test_tta_for_semantic_fpn_is_mmsegs_multiscale_flip():
    cfg = Config.fromfile(osp.join(REPO, SEMFPN))
    enable_tta(cfg)
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module.type == 'EncoderDecoder'
    tta = cfg.test_dataloader.dataset.pipeline[1]
    # mmseg 1.2 configs/_base_/datasets/ade20k.py.
    assert [t['scale_factor'] for t in tta.transforms[0]] == [
        0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


def test_tta_for_mask_rcnn_says_mmdet_cannot_merge_masks():
    cfg = Config.fromfile(osp.join(REPO, MASKRCNN))
    with pytest.raises(ConfigError, match='does not merge masks'):
        enable_tta(cfg)


def test_backbone_checkpoint_on_a_demo_config_with_init_cfg_none(
        demo_data, monkeypatch, tmp_path):
    monkeypatch.chdir(demo_data)
    checkpoint = tmp_path / 'convmlp_s_imagenet.pth'
    checkpoint.write_bytes(b'')
    cfg = train_cfg(DEMO_RETINANET, '--work-dir', str(tmp_path),
                    '--backbone-checkpoint', str(checkpoint))
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint=str(checkpoint))
    with pytest.raises(ConfigError, match='--backbone-checkpoint .* is not '
                       'a file'):
        train_cfg(DEMO_RETINANET, '--work-dir', str(tmp_path),
                  '--backbone-checkpoint', str(tmp_path / 'missing.pth'))


def test_tensorboard_flag_adds_the_backend_and_keeps_scalars_json(
        demo_data, monkeypatch, tmp_path):
    monkeypatch.chdir(demo_data)
    cfg = train_cfg(DEMO_RETINANET, '--work-dir', str(tmp_path),
                    '--tensorboard')
    types = [b['type'] for b in cfg.visualizer.vis_backends]
    assert types == ['LocalVisBackend', 'TensorboardVisBackend']


@pytest.mark.e2e
def test_dist_train_and_dist_test_as_upstream(demo_data, tmp_path):
    """tools/dist_train.sh CONFIG GPUS [args] on the demo config, which
    names its data; then tools/dist_test.sh CONFIG CHECKPOINT GPUS;
    --tensorboard writes TensorBoard event files."""
    env = tool_env(tmp_path, {'PORT': str(free_port())})
    work_dir = tmp_path / 'work'
    opts = ['--cfg-options', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
            'param_scheduler.0.end=1']
    proc = subprocess.run(
        ['tools/dist_train.sh', DEMO_RETINANET, '1', '--work-dir',
         str(work_dir), '--tensorboard', *opts], cwd=demo_data, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=600)
    assert proc.returncode == 0, explain(proc)
    assert glob.glob(str(work_dir / '*' / 'vis_data' / 'events.out.*'))
    assert glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))
    proc = subprocess.run(
        ['tools/dist_test.sh', DEMO_RETINANET, str(work_dir / 'epoch_1.pth'),
         '1', '--work-dir', str(tmp_path / 'test'), '--cfg-options',
         # One iteration of training: keep every box so there is an mAP.
         'model.test_cfg.score_thr=0.0'],
        cwd=demo_data, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, timeout=600)
    assert proc.returncode == 0, explain(proc)
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr


def test_dist_train_needs_config_and_gpus(tmp_path):
    proc = subprocess.run([osp.join(REPO, 'tools', 'dist_train.sh'),
                           RETINANET], cwd=tmp_path,
                          env=tool_env(tmp_path), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'usage: dist_train.sh CONFIG GPUS' in proc.stderr
