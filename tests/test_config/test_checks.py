"""Config mistakes, through tools/train.py --preflight: each is one error
line naming the key and the closest real one (difflib), before anything is
built or written; every config of the project passes the checks."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from convmlp_mm.config import check_config
from convmlp_mm.datasets import make_coco_dataset
from convmlp_mm.errors import ConfigError

from helpers import REPO, load_tool
from tools_run import CLASSES, RETINANET, SEMFPN, detection_options


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return make_coco_dataset(
        str(tmp_path_factory.mktemp('data') / 'coco'), num_train=2,
        num_val=1, image_size=(64, 48), classes=CLASSES)


def preflight(config, options, data_root, work_dir):
    tool = load_tool('tools/train.py')
    argv = [config, '--preflight', '--work-dir', str(work_dir),
            '--data-root', data_root, '--cfg-options', *options]
    try:
        tool.main(argv)
    except SystemExit as exc:
        message = str(exc.code)
        assert message.startswith('error: ') and '\n' not in message
        return message
    return ''


@pytest.mark.parametrize('option,expected', [
    ('default_hook.logger.interval=1',
     'Config key "default_hook" is not read by mmengine\'s Runner (did you '
     'mean "default_hooks"?)'),
    ('default_hooks.checkpoint.intervall=1',
     'default_hooks.checkpoint.intervall is not a setting of '
     'AtomicCheckpointHook (did you mean "interval"?)'),
    ('default_hooks.checkpoint.type=CheckpointHok',
     'default_hooks.checkpoint.type "CheckpointHok" is not a registered '
     'hook (did you mean "CheckpointHook"?)'),
    # The loop class is the one the config's registry returns (its own or
    # mmengine's EpochBasedTrainLoop).
    ('train_cfg.max_epoch=2',
     'EpochBasedTrainLoop (did you mean "max_epochs"?)'),
    ('optim_wrapper.optimizer.weight_decy=0.1',
     'optim_wrapper.optimizer.weight_decy is not a setting of AdamW (did '
     'you mean "weight_decay"?)'),
    ('optim_wrapper.clip_gard=1',
     'optim_wrapper.clip_gard is not a setting of OptimWrapper (did you '
     'mean "clip_grad"?)'),
    ('param_scheduler.1.milestone=[8]',
     'param_scheduler[1].milestone is not a setting of MultiStepLR (did you'
     ' mean "milestones"?)'),
    ('train_dataloader.num_worker=0',
     'train_dataloader.num_worker is not a setting of a dataloader'),
    ('model.backbone.drop_path_rate=1.5',
     'model.backbone: ConvMLP drop_path_rate must be a number in [0, 1)'),
    ('model.backbone.drop_path_rate=-0.1',
     'model.backbone: ConvMLP drop_path_rate must be a number in [0, 1)'),
    ('model.backbone.in_channels=0',
     'ConvMLP in_channels must be a positive integer'),
    # docs/model_zoo.md ("The backbone's four levels"): ConvMLP-L emits 96,
    # 192, 384, 768 channels; the S neck reads 64, 128, 256, 512.
    ('model.backbone.arch=l',
     'model.neck.in_channels is [64, 128, 256, 512] but the backbone '
     '(arch=\'l\', out_indices=(0, 1, 2, 3)) emits [96, 192, 384, 768]'),
], ids=['top level', 'hook setting', 'hook type', 'loop', 'optimizer',
        'optim wrapper', 'scheduler', 'dataloader', 'drop_path_rate > 1',
        'drop_path_rate < 0', 'in_channels', 'neck widths'])
def test_detection_config_mistake(coco_root, tmp_path, option, expected):
    work_dir = tmp_path / 'work'
    options = detection_options(RETINANET) + [option]
    message = preflight(RETINANET, options, coco_root, work_dir)
    assert expected in message
    assert not work_dir.exists()  # stopped before anything was written


def test_negative_width_in_arch_dict():
    cfg = Config.fromfile(RETINANET)
    cfg.merge_from_dict({'model.backbone.arch': dict(
        _delete_=True, channels=64, conv_blocks=2, blocks=[2, 4, 2],
        dims=[-128, 256, 512], mlp_ratio=2)})
    with pytest.raises(ConfigError, match=r'widths and block counts must be '
                       r'positive integers .*dims=\[-128, 256, 512\]'):
        check_config(cfg)


def test_segmentation_loop_typo():
    cfg = Config.fromfile(SEMFPN)
    cfg.merge_from_dict({'train_cfg.max_iter': 10})
    with pytest.raises(ConfigError, match=r'train_cfg.max_iter is not a '
                       r'setting of \w*IterBasedTrainLoop \(did you mean '
                       r'"max_iters"\?\)'):
        check_config(cfg)


def test_own_variables_are_not_typos():
    cfg = Config.fromfile(RETINANET)
    cfg.merge_from_dict({'my_schedule_length': 24, 'max_epochs': 24})
    check_config(cfg)


@pytest.mark.parametrize('config', sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))))
def test_every_project_config_passes(config):
    check_config(Config.fromfile(osp.join(REPO, config)))
