"""tools/train.py and tools/test.py on tiny synthetic COCO and ADE20K folders:
real training, evaluation (COCO metric, mIoU) and testing for RetinaNet,
Mask R-CNN and Semantic FPN; --data-root and its errors; the launcher's task
check; the offline checkpoint message; flags -> config."""
import glob
import json
import os.path as osp

import pytest
from mmengine.fileio import load as load_file

from convmlp_mm.config import (
    check_data_paths,
    prepare_test_config,
    prepare_train_config,
    set_data_root,
)
from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset
from convmlp_mm.errors import ConfigError

import helpers
from tools_run import (
    ADE_SIZE,
    CLASSES,
    COCO_SIZE,
    MASKRCNN,
    REPO,
    RETINANET,
    SEMFPN,
    detection_options,
    explain,
    python_tool,
    run,
    segmentation_options,
)


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return make_coco_dataset(
        str(tmp_path_factory.mktemp('data') / 'coco'), num_train=4,
        num_val=2, image_size=COCO_SIZE, classes=CLASSES)


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    return make_ade20k_dataset(
        str(tmp_path_factory.mktemp('data') / 'ade'), num_train=4,
        num_val=2, image_size=ADE_SIZE)


def load_tool(name):
    return helpers.load_tool(f'tools/{name}.py')


def metrics_json(work_dir):
    """The metrics mmengine's test loop wrote (work_dir/<time>/<time>.json)."""
    files = glob.glob(osp.join(work_dir, '*', '*.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def test_retinanet_trains_evaluates_and_tests(coco_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    train = run(python_tool(
        'train.py', RETINANET, '--data-root', coco_root, '--work-dir',
        work_dir, '--auto-scale-lr', '--cfg-options',
        *detection_options(RETINANET)), tmp_path)
    assert train.returncode == 0, explain(train)
    # 4 images, 2 per batch: 2 iterations, then COCO evaluation.
    assert 'Epoch(train) [1][2/2]' in train.stdout
    # --auto-scale-lr: 1e-4 x (1 process x 2 images) / 16, x 0.001 warm-up.
    assert 'lr: 1.2500e-08' in train.stdout, explain(train)
    assert 'coco/bbox_mAP:' in train.stdout
    checkpoint = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(checkpoint)

    test_dir = str(tmp_path / 'test')
    out = str(tmp_path / 'predictions.pkl')
    test = run(python_tool(
        'test.py', RETINANET, checkpoint, '--data-root', coco_root,
        '--work-dir', test_dir, '--out', out, '--show-dir', 'shown',
        '--cfg-options', *detection_options(RETINANET)), tmp_path)
    assert test.returncode == 0, explain(test)
    metrics = metrics_json(test_dir)
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0
    predictions = load_file(out)
    assert len(predictions) == 2
    assert {'bboxes', 'scores', 'labels'} <= set(
        predictions[0]['pred_instances'])
    shown = glob.glob(osp.join(test_dir, '*', 'shown', '*.jpg'))
    assert len(shown) == 2, shown


def test_maskrcnn_trains_and_evaluates_boxes_and_masks(coco_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    train = run(python_tool(
        'train.py', MASKRCNN, '--data-root', coco_root, '--work-dir',
        work_dir, '--cfg-options', *detection_options(MASKRCNN)), tmp_path)
    assert train.returncode == 0, explain(train)
    assert 'Epoch(train) [1][2/2]' in train.stdout
    assert 'loss_mask:' in train.stdout
    assert 'coco/bbox_mAP:' in train.stdout
    assert 'coco/segm_mAP:' in train.stdout
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


def test_semantic_fpn_trains_with_cpu_amp_and_tests(ade_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    train = run(python_tool(
        'train.py', SEMFPN, '--amp', '--data-root', ade_root, '--work-dir',
        work_dir, '--cfg-options', *segmentation_options()), tmp_path)
    assert train.returncode == 0, explain(train)
    assert 'Iter(train) [2/2]' in train.stdout
    assert 'mIoU:' in train.stdout
    # --amp without CUDA: bfloat16 autocast, no loss scaler.
    dumped = open(osp.join(work_dir, osp.basename(SEMFPN))).read()
    assert "type='CPUAmpOptimWrapper'" in dumped
    # SyncBN in the config, plain BN in a non-distributed run (mmengine).
    assert 'SyncBatchNorm (SyncBN) layers in the model will be ' \
        'automatically reverted' in train.stdout
    checkpoint = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(checkpoint)

    out_dir = str(tmp_path / 'masks')
    test = run(python_tool(
        'test.py', SEMFPN, checkpoint, '--data-root', ade_root, '--work-dir',
        str(tmp_path / 'test'), '--out', out_dir, '--show-dir',
        str(tmp_path / 'shown'), '--cfg-options', *segmentation_options()),
        tmp_path)
    assert test.returncode == 0, explain(test)
    assert 0.0 <= metrics_json(str(tmp_path / 'test'))['mIoU'] <= 100.0
    assert len(glob.glob(osp.join(out_dir, '*.png'))) == 2
    # Every test image drawn (mmseg's hook alone draws every 50th).
    assert len(glob.glob(osp.join(str(tmp_path / 'shown'), 'vis_data',
                                  'vis_image', '*.png'))) == 2


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
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.work_dir == './work_dirs/retinanet_convmlp_s_fpn_1x_coco'
    cfg = prepare_train_config(train_tool.parse_args(
        [RETINANET, '--data-root', coco_root, '--resume', 'x.pth',
         '--work-dir', str(tmp_path), '--cfg-options',
         *detection_options(RETINANET)]))
    assert (cfg.resume, cfg.load_from, cfg.work_dir) == (True, 'x.pth',
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
