"""tools/train.py and tools/test.py on tiny synthetic COCO and ADE20K folders:
training plumbing for RetinaNet, Mask R-CNN and Semantic FPN (--amp) on the
paper's ConvMLP-S configs; tools/test.py, its --out/--show-dir and the
fallback --tta pipeline on the models that learned (tests/conftest.py), whose
metrics it must reproduce above the learned thresholds; --data-root and its
errors; the launcher's task check; the offline checkpoint message; flags ->
config."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.fileio import load as load_file
from tool_artifacts import read, semfpn_amp  # noqa: F401

from convmlp_mm.config import (
    check_data_paths,
    prepare_test_config,
    prepare_train_config,
    set_data_root,
)
from convmlp_mm.errors import ConfigError

import helpers
from tools_run import (
    MASKRCNN,
    REPO,
    RETINANET,
    SEMFPN,
    detection_options,
    explain,
    python_tool,
    run,
)


def load_tool(name):
    return helpers.load_tool(f'tools/{name}.py')


def metrics_json(work_dir):
    """The metrics mmengine's test loop wrote (work_dir/<time>/<time>.json)."""
    files = glob.glob(osp.join(work_dir, '*', '*.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return json.loads(f.read().strip().splitlines()[-1])


# 8 training images at batch 4: 2 iterations, then COCO evaluation.
BATCH_4 = ['train_dataloader.batch_size=4']


@pytest.mark.e2e
def test_retinanet_trains_and_evaluates(coco_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    train = run(python_tool(
        'train.py', RETINANET, '--data-root', coco_root, '--work-dir',
        work_dir, '--auto-scale-lr', '--cfg-options',
        *detection_options(RETINANET), *BATCH_4), tmp_path)
    assert train.returncode == 0, explain(train)
    assert 'Epoch(train) [1][2/2]' in train.stdout
    # --auto-scale-lr: 1e-4 x (1 process x 4 images) / 16, x 0.001 warm-up.
    assert 'lr: 2.5000e-08' in train.stdout, explain(train)
    assert 'coco/bbox_mAP:' in train.stdout
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


@pytest.mark.e2e
def test_maskrcnn_trains_and_evaluates_boxes_and_masks(coco_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    train = run(python_tool(
        'train.py', MASKRCNN, '--data-root', coco_root, '--work-dir',
        work_dir, '--cfg-options', *detection_options(MASKRCNN), *BATCH_4),
        tmp_path)
    assert train.returncode == 0, explain(train)
    assert 'Epoch(train) [1][2/2]' in train.stdout
    assert 'loss_mask:' in train.stdout
    assert 'coco/bbox_mAP:' in train.stdout
    assert 'coco/segm_mAP:' in train.stdout
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


@pytest.mark.e2e
@pytest.mark.xdist_group('tool_runs')
def test_semantic_fpn_trains_with_cpu_amp(semfpn_amp):  # noqa: F811
    """The shared --amp run (tests/tool_artifacts.py; its dumped config runs
    under mim in test_upstream_tools.py)."""
    out = read(semfpn_amp['stdout'])
    assert 'Iter(train) [2/2]' in out
    assert 'mIoU:' in out
    # --amp without CUDA: bfloat16 autocast, no loss scaler.
    assert "type='CPUAmpOptimWrapper'" in read(semfpn_amp['config'])
    # SyncBN in the config, plain BN in a non-distributed run (mmengine).
    assert 'SyncBatchNorm (SyncBN) layers in the model will be ' \
        'automatically reverted' in out
    assert osp.isfile(semfpn_amp['checkpoint'])


def _test_learned(learned, tmp_path, *extra, config=None):
    test_dir = str(tmp_path / 'test')
    proc = run(python_tool(
        'test.py', config or learned['config'], learned['checkpoint'],
        '--data-root', learned['data_root'], '--work-dir', test_dir, *extra),
        tmp_path)
    assert proc.returncode == 0, explain(proc)
    return test_dir, metrics_json(test_dir)


@pytest.mark.e2e
@pytest.mark.xdist_group('learned_detector')
def test_tools_test_reproduces_the_learned_detectors_map(learned_detector,
                                                          tmp_path):
    """tools/test.py on the trained RetinaNet: the training's last
    validation (same data, same weights) and above the learning threshold
    of test_learning.py; --out writes every prediction, --show-dir draws
    every image."""
    out = str(tmp_path / 'predictions.pkl')
    test_dir, metrics = _test_learned(learned_detector, tmp_path, '--out',
                                      out, '--show-dir', 'shown')
    assert metrics['coco/bbox_mAP'] >= 0.45, metrics
    assert abs(metrics['coco/bbox_mAP'] -
               learned_detector['metrics']['coco/bbox_mAP']) <= 0.01
    predictions = load_file(out)
    assert len(predictions) == 32  # the validation images
    assert {'bboxes', 'scores', 'labels'} <= set(
        predictions[0]['pred_instances'])
    shown = glob.glob(osp.join(test_dir, '*', 'shown', '*.jpg'))
    assert len(shown) == 32, len(shown)


@pytest.mark.e2e
@pytest.mark.xdist_group('learned_detector')
def test_tta_fallback_pipeline_on_the_learned_detector(learned_detector,
                                                       tmp_path):
    """--tta on a config without tta_model/tta_pipeline: convmlp_mm's
    fallback (config/options.py enable_tta: the test pipeline with a
    flipped and a plain copy, merged by NMS) on the trained RetinaNet's
    own checkpoint. Its config has a tta_pipeline at its own scale
    (test_documented_flags.py); the dump without it is a config without
    TTA settings."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(learned_detector['work_dir'],
                                   osp.basename(learned_detector['config'])))
    cfg.pop('tta_model')
    cfg.pop('tta_pipeline')
    config = str(tmp_path / 'no_tta_settings.py')
    cfg.dump(config)
    _, metrics = _test_learned(learned_detector, tmp_path, '--tta',
                               config=config)
    # Flip TTA of a model that learned: 0.726 measured (0.691 without).
    assert metrics['coco/bbox_mAP'] >= 0.45, metrics


@pytest.mark.e2e
@pytest.mark.xdist_group('learned_segmentor')
def test_tools_test_reproduces_the_learned_segmentors_miou(learned_segmentor,
                                                           tmp_path):
    """tools/test.py on the trained Semantic FPN: its validation mIoU again,
    above the threshold of test_learning.py; --out writes a mask per image
    and --show-dir draws every one (mmseg's hook alone draws every 50th)."""
    masks, shown = str(tmp_path / 'masks'), str(tmp_path / 'shown')
    _, metrics = _test_learned(learned_segmentor, tmp_path, '--out', masks,
                               '--show-dir', shown)
    assert metrics['mIoU'] >= 70, metrics
    assert abs(metrics['mIoU'] - learned_segmentor['metrics']['mIoU']) <= 1
    assert len(glob.glob(osp.join(masks, '*.png'))) == 32
    assert len(glob.glob(osp.join(shown, 'vis_data', 'vis_image',
                                  '*.png'))) == 32


def test_missing_data_paths_fail_before_any_model_is_built(coco_root,
                                                           tmp_path):
    partial = tmp_path / 'partial_coco'
    (partial / 'annotations').mkdir(parents=True)
    (partial / 'train2017').mkdir()
    (partial / 'annotations' / 'instances_train2017.json').write_text('{}')
    work_dir = tmp_path / 'work'
    proc = run(python_tool('train.py', RETINANET, '--data-root', str(partial),
                           '--work-dir', str(work_dir)), tmp_path)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr, proc.stderr
    assert f'--data-root {partial} lacks' in proc.stderr
    assert osp.join(str(partial), 'val2017') in proc.stderr
    assert 'instances_val2017.json' in proc.stderr
    assert 'train2017' not in proc.stderr.split('missing:')[1].split(
        'Expected')[0]
    assert 'Expected a COCO folder' in proc.stderr
    assert not work_dir.exists()


def test_data_root_rewrites_every_loader_and_the_coco_metric(coco_root):
    args = load_tool('train').parse_args(
        [RETINANET, '--data-root', coco_root, '--cfg-options',
         *detection_options(RETINANET)])
    cfg = prepare_train_config(args)
    for loader in ('train', 'val', 'test'):
        assert cfg[f'{loader}_dataloader'].dataset.data_root == coco_root
    assert cfg.val_evaluator.ann_file == osp.join(
        coco_root, 'annotations/instances_val2017.json')
    assert cfg.test_evaluator.ann_file == cfg.val_evaluator.ann_file

    # ADE20K layout: an empty folder lacks all four subfolders.
    from mmengine.config import Config
    seg = Config.fromfile(osp.join(REPO, SEMFPN))
    set_data_root(seg, coco_root)
    with pytest.raises(ConfigError, match='images/validation') as info:
        check_data_paths(seg, 'train', coco_root)
    assert 'Expected an ADE20K folder' in str(info.value)
    with pytest.raises(ConfigError, match='is not a folder'):
        check_data_paths(seg, 'test', osp.join(coco_root, 'nope'))


def test_flags_map_to_the_config(coco_root, tmp_path):
    train_tool = load_tool('train')
    cfg = prepare_train_config(train_tool.parse_args(
        [RETINANET, '--data-root', coco_root, '--amp', '--resume',
         '--cfg-options', *detection_options(RETINANET)]))
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    # --resume with no checkpoint in the work dir: a first run, as upstream.
    assert cfg.resume is False and cfg.load_from is None
    assert cfg.work_dir == './work_dirs/retinanet_convmlp_s_fpn_1x_coco'
    checkpoint = str(tmp_path / 'x.pth')
    torch.save(dict(meta=dict(epoch=0, iter=0)), checkpoint)
    cfg = prepare_train_config(train_tool.parse_args(
        [RETINANET, '--data-root', coco_root, '--resume', checkpoint,
         '--work-dir', str(tmp_path), '--cfg-options',
         *detection_options(RETINANET)]))
    assert (cfg.resume, cfg.load_from, cfg.work_dir) == (True, checkpoint,
                                                         str(tmp_path))
    assert cfg.auto_scale_lr.enable is False
    with pytest.raises(ConfigError, match='no bfloat16 CPU kernels'):
        prepare_train_config(train_tool.parse_args(
            [MASKRCNN, '--data-root', coco_root, '--amp', '--cfg-options',
             *detection_options(MASKRCNN)]))
    with pytest.raises(ConfigError, match='dist_segmentation.sh'):
        prepare_train_config(train_tool.parse_args(
            [SEMFPN, '--task', 'detection']))

    test_tool = load_tool('test')
    with pytest.raises(ConfigError, match='.pkl'):
        prepare_test_config(test_tool.parse_args(
            [RETINANET, 'ckpt.pth', '--data-root', coco_root, '--out',
             'preds.json', '--cfg-options', *detection_options(RETINANET)]))


@pytest.mark.e2e
def test_offline_checkpoint_error_names_the_cfg_options_fix(
        coco_root, tmp_path):
    # Nothing listens on port 9: the download fails at once, as offline.
    url = 'http://127.0.0.1:9/convmlp_s_imagenet.pth'
    options = [o for o in detection_options(RETINANET)
               if not o.startswith('model.backbone.init_cfg')]
    proc = run(python_tool(
        'train.py', RETINANET, '--data-root', coco_root, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={url}', *options), tmp_path)
    assert proc.returncode == 1, explain(proc)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: Could not download checkpoint'), last
    assert ('--cfg-options model.backbone.init_cfg.checkpoint=/path/to/'
            'convmlp_s_imagenet.pth') in last


def test_cpu_amp_wrapper_autocasts_to_bfloat16():
    import torch
    from mmengine.registry import OPTIM_WRAPPERS
    model = torch.nn.Linear(4, 2)
    wrapper = OPTIM_WRAPPERS.build(dict(
        type='CPUAmpOptimWrapper',
        optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3)))
    with wrapper.optim_context(model):
        out = model(torch.rand(3, 4))
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert model.weight.dtype == torch.float32
    assert not torch.equal(before, model.weight)
