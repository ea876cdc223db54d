"""The release's trained models (mmdet 2 / mmseg 0.x files) evaluate with
tools/test.py, and tools/model_converters/convmlp_release2mm.py converts
them strictly."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmseg.datasets import ADE20KDataset
from release_checkpoints import make_release_checkpoint

from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset

from helpers import REPO
from tools_run import (
    ADE_SIZE,
    CLASSES,
    COCO_SIZE,
    MASKRCNN,
    SEMFPN,
    detection_options,
    explain,
    python_tool,
    run,
    segmentation_options,
)

CONVERTER = 'model_converters/convmlp_release2mm.py'


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    return make_coco_dataset(
        str(tmp_path_factory.mktemp('data') / 'coco'), num_train=2,
        num_val=2, image_size=COCO_SIZE, classes=CLASSES)


def maskrcnn_model():
    """Mask R-CNN-ConvMLP-S with the 3 synthetic classes, as
    detection_options(MASKRCNN) makes it."""
    cfg = Config.fromfile(osp.join(REPO, MASKRCNN))
    cfg.model.backbone.init_cfg = None
    cfg.model.roi_head.bbox_head.num_classes = len(CLASSES)
    cfg.model.roi_head.mask_head.num_classes = len(CLASSES)
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def release_maskrcnn(path, classes=CLASSES, rename=None):
    model = maskrcnn_model()
    with open(osp.join(REPO, MASKRCNN)) as f:
        state = make_release_checkpoint(str(path), model, 's', classes,
                                        f.read())
    if rename:
        saved = torch.load(str(path), weights_only=True)
        old, new = rename
        saved['state_dict'] = {new if k == old else k: v
                               for k, v in saved['state_dict'].items()}
        torch.save(saved, str(path))
    return state


def metrics(work_dir):
    files = glob.glob(osp.join(work_dir, '*', '*.json'))
    assert len(files) == 1, files
    with open(files[0]) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def test_release_maskrcnn_evaluates_raw_and_converted(coco_root, tmp_path):
    release = tmp_path / 'maskrcnn_convmlp_s_coco.pth'
    state = release_maskrcnn(release)
    options = detection_options(MASKRCNN)
    raw = run(python_tool('test.py', MASKRCNN, str(release), '--data-root',
                          coco_root, '--work-dir', str(tmp_path / 'raw'),
                          '--cfg-options', *options), tmp_path)
    assert raw.returncode == 0, explain(raw)
    raw_metrics = metrics(str(tmp_path / 'raw'))
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(raw_metrics)

    converted = tmp_path / 'converted.pth'
    conv = run(python_tool(CONVERTER, MASKRCNN, str(release), str(converted),
                           '--cfg-options', *options), tmp_path)
    assert conv.returncode == 0, explain(conv)
    assert 'mmdet_version 2.16.0' in conv.stdout
    out = torch.load(str(converted), weights_only=True)
    assert out['meta']['dataset_meta']['classes'] == CLASSES
    assert list(out['state_dict']) == list(state)
    assert all(torch.equal(out['state_dict'][k], v) for k, v in state.items())

    test = run(python_tool('test.py', MASKRCNN, str(converted), '--data-root',
                           coco_root, '--work-dir', str(tmp_path / 'conv'),
                           '--cfg-options', *options), tmp_path)
    assert test.returncode == 0, explain(test)
    conv_metrics = metrics(str(tmp_path / 'conv'))
    # The same tensors: the same predictions, so the same metrics.
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert conv_metrics[key] == raw_metrics[key]


def test_release_semantic_fpn_converts_and_evaluates(tmp_path):
    ade_root = make_ade20k_dataset(str(tmp_path / 'ade'), num_train=2,
                                   num_val=2, image_size=ADE_SIZE)
    cfg = Config.fromfile(osp.join(REPO, SEMFPN))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    # mmseg 0.x saved ADE20KDataset.CLASSES / PALETTE (the same 150 names
    # and colours as mmseg 1.2's METAINFO, compared in the 0.30.0 wheel).
    ade = ADE20KDataset.METAINFO
    release = tmp_path / 'sem_fpn_convmlp_s_ade20k.pth'
    with open(osp.join(REPO, SEMFPN)) as f:
        make_release_checkpoint(str(release), model, 's', ade['classes'],
                                f.read(), library='mmseg',
                                palette=ade['palette'])
    converted = tmp_path / 'converted.pth'
    options = segmentation_options()
    conv = run(python_tool(CONVERTER, SEMFPN, str(release), str(converted),
                           '--cfg-options', *options), tmp_path)
    assert conv.returncode == 0, explain(conv)
    assert 'mmseg_version 0.17.0' in conv.stdout
    meta = torch.load(str(converted), weights_only=True)['meta']
    assert len(meta['dataset_meta']['palette']) == 150
    test = run(python_tool('test.py', SEMFPN, str(converted), '--data-root',
                           ade_root, '--work-dir', str(tmp_path / 'test'),
                           '--cfg-options', *options), tmp_path)
    assert test.returncode == 0, explain(test)
    assert 'mIoU' in metrics(str(tmp_path / 'test'))


def one_error_line(proc):
    assert proc.returncode == 1, explain(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    return lines[0]


def test_a_wrong_key_is_refused_naming_it(tmp_path):
    release = tmp_path / 'bad.pth'
    release_maskrcnn(release, rename=('roi_head.mask_head.conv_logits.weight',
                                      'roi_head.mask_head.conv_logit.weight'))
    proc = run(python_tool(CONVERTER, MASKRCNN, str(release),
                           str(tmp_path / 'out.pth'), '--cfg-options',
                           *detection_options(MASKRCNN)), tmp_path)
    line = one_error_line(proc)
    assert 'is missing (roi_head.mask_head.conv_logits.weight)' in line
    assert 'no place in the model (roi_head.mask_head.conv_logit.weight)' \
        in line
    assert not (tmp_path / 'out.pth').exists()


def test_other_classes_are_refused_naming_both(tmp_path):
    release = tmp_path / 'other.pth'
    release_maskrcnn(release, classes=('circle', 'square', 'star'))
    proc = run(python_tool(CONVERTER, MASKRCNN, str(release),
                           str(tmp_path / 'out.pth'), '--cfg-options',
                           *detection_options(MASKRCNN)), tmp_path)
    line = one_error_line(proc)
    assert "'star'" in line and "'triangle'" in line
    assert f'config {MASKRCNN}' in line


def test_the_coco_config_refuses_a_three_class_file(tmp_path):
    # Without the synthetic-class options the config is COCO's 80 classes.
    release = tmp_path / 'three.pth'
    release_maskrcnn(release)
    proc = run(python_tool(CONVERTER, MASKRCNN, str(release),
                           str(tmp_path / 'out.pth')), tmp_path)
    assert 'names 80' in one_error_line(proc)


def test_an_mmengine_checkpoint_needs_no_conversion(tmp_path):
    path = tmp_path / 'mm3.pth'
    torch.save(dict(meta=dict(mmengine_version='0.10.7'),
                    state_dict=dict(w=torch.zeros(1))), str(path))
    proc = run(python_tool(CONVERTER, MASKRCNN, str(path),
                           str(tmp_path / 'out.pth')), tmp_path)
    assert 'needs no conversion' in one_error_line(proc)


def test_tools_test_refuses_a_release_file_of_other_classes(coco_root,
                                                            tmp_path):
    # Same number of classes, so every tensor fits: only the names recorded
    # in the file's meta (CLASSES) tell that it is another model.
    release = tmp_path / 'other.pth'
    release_maskrcnn(release, classes=('circle', 'square', 'star'))
    proc = run(python_tool('test.py', MASKRCNN, str(release), '--data-root',
                           coco_root, '--work-dir', str(tmp_path / 'w'),
                           '--cfg-options', *detection_options(MASKRCNN)),
               tmp_path)
    line = one_error_line(proc)
    assert "'star'" in line and "'triangle'" in line, line
