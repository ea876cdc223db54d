"""Bad input through the real configs and tools: each a clear error naming
the problem and the fix, nothing half-written left behind. A non-finite loss
stops training at that iteration with the last good checkpoint kept; images
without annotations train."""
import json
import math
import os
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope

from convmlp_mm.checkpoint.safe_loading import safe_torch_load
from convmlp_mm.engine import NonFiniteLossError
from convmlp_mm.models import CheckpointMismatchError

from helpers import load_tool
from tools_run import explain, python_tool, run
from toy_runner import REPO, toy_runner, write_tiny_coco

RETINANET = os.path.join(REPO, 'configs', 'detection',
                         'retinanet_convmlp_s_fpn_1x_coco.py')


def build_detector(**overrides):
    """The real RetinaNet-ConvMLP-S config with --cfg-options style
    overrides, built from mmdet's registry (no ImageNet download)."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(RETINANET)
    cfg.merge_from_dict({'model.backbone.init_cfg': None, **overrides})
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('overrides,error,match', [
    ({'model.backbone.arch': 'xs'}, ValueError,
     r'arch "xs" is not one of s, m, l, small, medium, large'),
    ({'model.backbone.out_indices': (1, 2, 4)}, ValueError,
     r'out_indices'),
    # A typo in a backbone argument (drop_path for drop_path_rate).
    ({'model.backbone.drop_path': 0.1}, TypeError,
     r'ConvMLP got unknown argument\(s\) "drop_path" \(did you mean '
     r'"drop_path_rate"\?\)'),
], ids=['unknown arch', 'out_indices out of range', 'config typo'])
def test_bad_backbone_config(overrides, error, match):
    with pytest.raises(error, match=match):
        build_detector(**overrides)


def test_wrong_number_of_image_channels():
    detector = build_detector()
    with pytest.raises(ValueError, match=r'3 channels.*\(1, 4, 64, 64\)'):
        detector.extract_feat(torch.rand(1, 4, 64, 64))  # e.g. RGBA


def test_checkpoint_of_another_size(official_checkpoint):
    path, _ = official_checkpoint('m')
    detector = build_detector(
        **{'model.backbone.init_cfg': dict(type='Pretrained',
                                           checkpoint=path)})
    with pytest.raises(CheckpointMismatchError,
                       match=r'looks like ConvMLP-M: build the backbone with '
                       r'arch="m"'):
        detector.init_weights()


# --- data folders, through tools/train.py's main() (no model is built) ----

def train_main(argv):
    tool = load_tool('tools/train.py')
    with pytest.raises(SystemExit) as exit_info:
        tool.main(argv)
    return str(exit_info.value.code)


@pytest.fixture
def tiny(tmp_path):
    data_root, config = write_tiny_coco(tmp_path)
    return data_root, config, tmp_path / 'work'


def test_data_root_does_not_exist(tiny):
    _, config, work_dir = tiny
    missing = str(work_dir.parent / 'no_such_folder')
    message = train_main([config, '--data-root', missing, '--work-dir',
                          str(work_dir)])
    assert message.startswith(f'error: --data-root {missing} is not a folder')
    assert 'annotations/instances_train2017.json' in message  # the layout
    assert not work_dir.exists()


def test_data_root_lacks_annotation_file(tiny):
    data_root, config, work_dir = tiny
    ann = os.path.join(data_root, 'annotations', 'instances_train2017.json')
    os.remove(ann)
    message = train_main([config, '--data-root', data_root, '--work-dir',
                          str(work_dir)])
    assert 'lacks what this config reads' in message
    assert f'train_dataloader.ann_file: {ann}' in message
    assert not work_dir.exists()


@pytest.mark.parametrize('content,match', [
    (None, r'not valid COCO JSON: .* at line 1, column'),  # truncated
    ('[1, 2, 3]', r'JSON but not a COCO instances file: the top level is a '
     r'list'),
    ('{"images": [], "categories": [{"id": 1, "name": "a"}]}',
     r'"annotations" is missing'),
], ids=['truncated', 'not an object', 'no annotations key'])
def test_annotation_file_not_valid_coco(tiny, content, match):
    data_root, config, work_dir = tiny
    ann = os.path.join(data_root, 'annotations', 'instances_train2017.json')
    with open(ann) as f:
        text = f.read()
    with open(ann, 'w') as f:
        f.write(text[:len(text) // 2] if content is None else content)
    message = train_main([config, '--data-root', data_root, '--work-dir',
                          str(work_dir)])
    assert message.startswith(f'error: Annotation file {ann} ')
    assert re.search(match, message), message
    assert 'tools/make_dataset.py coco' in message  # the fix
    assert not work_dir.exists()


def test_categories_that_the_config_does_not_train_on(tiny):
    """The real COCO config (80 classes) on the built-in shapes would drop
    every image; the error says so before anything is built."""
    data_root, _, work_dir = tiny
    config = os.path.join(REPO, 'configs', 'detection',
                          'retinanet_convmlp_s_fpn_1x_coco.py')
    message = train_main([config, '--data-root', data_root, '--work-dir',
                          str(work_dir)])
    assert 'None of the categories in' in message
    assert '(circle, square, triangle)' in message
    assert '(person, bicycle, car' in message
    assert 'train_dataloader.dataset.metainfo.classes' in message
    assert not work_dir.exists()


def test_resume_from_missing_file_is_one_line(tiny):
    data_root, config, work_dir = tiny
    missing = str(work_dir.parent / 'no_such_checkpoint.pth')
    message = train_main([config, '--data-root', data_root, '--work-dir',
                          str(work_dir), '--resume', missing])
    assert message == (f'error: --resume {missing}: no such file. Give an '
                       'existing checkpoint, or --resume without a path to '
                       "resume from the work dir's last checkpoint.")


# --- training-time faults ---------------------------------------------------

class _DivergeAt(Hook):
    """Makes the weights infinite before iteration ``at`` (1-based), as a
    too-high learning rate would."""

    def __init__(self, at):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                runner.model.linear.weight.fill_(math.inf)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    runner = toy_runner(tmp_path, max_iters=8, interval=2,
                        custom_hooks=[dict(type='NonFiniteLossHook'),
                                      _DivergeAt(5)])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    last_good = str(tmp_path / 'iter_4.pth')
    message = str(err.value)
    assert message.startswith('Non-finite loss at iteration 5: loss=nan.')
    assert f'The last good checkpoint is {last_good}' in message
    assert f'--resume {last_good}' in message
    checkpoints = sorted(p for p in os.listdir(tmp_path) if 'pth' in p)
    assert checkpoints == ['iter_2.pth', 'iter_4.pth']
    with open(tmp_path / 'last_checkpoint') as f:
        assert f.read() == last_good
    weights = safe_torch_load(last_good, last_good)['state_dict']
    assert all(torch.isfinite(w).all() for w in weights.values())


@pytest.mark.e2e
def test_non_finite_loss_in_real_training_run(tmp_path):
    """tools/train.py with the configs' NonFiniteLossHook: the lr jumps by
    1e30 after epoch 1, the detector diverges in epoch 2, the tool exits
    with the message and epoch 1's checkpoint stays the last one."""
    data_root, config = write_tiny_coco(tmp_path)
    work_dir = tmp_path / 'work'
    result = run(python_tool(
        'train.py', config, '--data-root', data_root, '--work-dir',
        str(work_dir), '--cfg-options', 'param_scheduler.1.milestones=[1]',
        'param_scheduler.1.gamma=1e30'), tmp_path, timeout=300)
    assert result.returncode == 1, explain(result)
    error = result.stderr.strip().splitlines()[-1]
    # Iteration 3 trains with the jumped lr; 4 (epoch 2, batch 2) diverges.
    assert error.startswith('error: Non-finite loss at iteration 4 (epoch 2, '
                            'batch 2): loss=')
    assert f'last good checkpoint is {work_dir / "epoch_1.pth"}' in error
    assert sorted(p for p in os.listdir(work_dir) if 'pth' in p) == [
        'epoch_1.pth']


@pytest.mark.e2e
def test_images_without_annotations_train(tmp_path):
    """tools/train.py (a fork of the preloaded tool server: the run builds
    a Runner, whose process-wide state stays out of the test process)."""
    data_root, config = write_tiny_coco(tmp_path)
    ann = os.path.join(data_root, 'annotations', 'instances_train2017.json')
    with open(ann) as f:
        coco = json.load(f)
    keep = coco['images'][0]['id']  # three of four images lose their objects
    coco['annotations'] = [a for a in coco['annotations']
                           if a['image_id'] == keep]
    with open(ann, 'w') as f:
        json.dump(coco, f)
    work_dir = tmp_path / 'work'
    result = run(python_tool(
        'train.py', config, '--data-root', data_root, '--work-dir',
        str(work_dir), '--cfg-options', 'train_cfg.max_epochs=2',
        # mmdet drops such images from training by default; keep them so
        # batches of only empty images go through the model.
        'train_dataloader.dataset.filter_cfg.filter_empty_gt=False'),
        tmp_path, timeout=300)
    assert result.returncode == 0, explain(result)
    log = result.stdout + result.stderr
    assert 'Epoch(train) [2][2/2]' in log  # all four images, two per batch
    assert os.path.isfile(work_dir / 'epoch_2.pth')


class _AbsurdWeightsAfter(Hook):
    """After iteration ``at`` (1-based), before its checkpoint is written,
    sets the weights to 1e30: finite, so the checkpoint is saved, and the
    next loss overflows."""
    priority = 'NORMAL'  # after NonFiniteLossHook, before CheckpointHook

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                runner.model.linear.weight.fill_(1e30)


def test_checkpoint_of_absurd_weights_is_not_called_good(tmp_path):
    """iter_4.pth holds weights of 1e30 (finite): the stop names iter_2.pth
    (before: iter_4.pth, "the last good checkpoint")."""
    runner = toy_runner(tmp_path, max_iters=8, interval=2,
                        custom_hooks=[dict(type='NonFiniteLossHook'),
                                      _AbsurdWeightsAfter(4)])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    absurd = safe_torch_load(str(tmp_path / 'iter_4.pth'),
                             'iter_4.pth')['state_dict']
    assert float(absurd['linear.weight'].abs().max()) == pytest.approx(1e30)
    message = str(err.value)
    assert message.startswith('Non-finite loss at iteration 5')
    assert f'The last good checkpoint is {tmp_path / "iter_2.pth"}.' \
        in message


# --- tools/inference.py arguments and model options: one line each ---------

DEMO = os.path.join(REPO, 'configs', 'demo')
RETINANET_DEMO = os.path.join(DEMO, 'retinanet_convmlp_s_fpn_demo_shapes.py')
SEMFPN_DEMO = os.path.join(DEMO, 'fpn_convmlp_s_demo_shapes.py')


@pytest.fixture
def image(tmp_path, monkeypatch):
    import cv2
    monkeypatch.delenv('CONVMLP_DEBUG', raising=False)
    path = str(tmp_path / 'image.png')
    cv2.imwrite(path, np.zeros((32, 32, 3), np.uint8))
    return path


def inference_error(argv):
    with pytest.raises(SystemExit) as info:
        load_tool('tools/inference.py').main(argv)
    line = info.value.code
    assert isinstance(line, str) and '\n' not in line, line
    return line


def test_device_cuda_without_a_gpu(tmp_path, image, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    line = inference_error([RETINANET_DEMO, 'none', image, '--device',
                            'cuda', '--out-dir', str(tmp_path / 'out')])
    assert line == ('error: --device cuda asked for, but torch sees no GPU; '
                    'use --device cpu.')
    assert not (tmp_path / 'out').exists()


def test_group_norm_without_num_groups(tmp_path, image):
    line = inference_error([
        RETINANET_DEMO, 'none', image, '--out-dir', str(tmp_path / 'out'),
        '--cfg-options', 'model.backbone.norm_cfg.type=GN'])
    assert 'norm_cfg type GN (GroupNorm) needs num_groups' in line, line
    assert '--cfg-options model.backbone.norm_cfg.num_groups=8' in line


@pytest.mark.e2e
def test_classes_for_a_segmentor(tmp_path, image):
    """--classes names the segmentor's classes (before: mmseg's bare
    assertion "The length of classes should be equal to palette" for any
    number of names)."""
    tool = load_tool('tools/inference.py')
    summary = tool.main([SEMFPN_DEMO, 'none', image, '--out-dir',
                         str(tmp_path / 'out'), '--classes', 'sky', 'disc',
                         'box', 'wedge'])
    assert summary['classes'] == ['sky', 'disc', 'box', 'wedge']
    with open(summary['json']) as f:
        assert json.load(f)['classes'] == ['sky', 'disc', 'box', 'wedge']
    line = inference_error([SEMFPN_DEMO, 'none', image, '--out-dir',
                            str(tmp_path / 'out2'), '--classes', 'a', 'b'])
    assert 'The model predicts 4 classes but 2 class names' in line, line


def test_imagenet_checkpoint_given_as_a_detector(tmp_path, image,
                                                 official_checkpoint):
    """The advice works on the demo configs, whose init_cfg=None a
    --cfg-options model.backbone.init_cfg.* (the old advice) cannot merge
    into."""
    path, _ = official_checkpoint('s', wrap='state_dict')
    line = inference_error([RETINANET_DEMO, path, image, '--out-dir',
                            str(tmp_path / 'out')])
    assert 'It looks like an ImageNet classifier checkpoint' in line, line
    assert f'tools/train.py CONFIG --backbone-checkpoint {path}' in line
    assert 'init_cfg' not in line
