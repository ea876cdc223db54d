"""The release's trained models (mmdet 2 / mmseg 0.x files, their keys and
meta written from the 2.x sources by tests/release_checkpoints.py, not from
our models) evaluate with tools/test.py, and
tools/model_converters/convmlp_release2mm.py converts them strictly."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmseg.datasets import ADE20KDataset
from release_checkpoints import (
    make_release_checkpoint,
    release_maskrcnn_keys,
    release_meta,
    release_semantic_fpn_keys,
)

from helpers import REPO
from tools_run import (
    CLASSES,
    MASKRCNN,
    SEMFPN,
    detection_options,
    explain,
    python_tool,
    run,
    segmentation_options,
)

CONVERTER = 'model_converters/convmlp_release2mm.py'


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
    with open(osp.join(REPO, MASKRCNN)) as f:
        meta = release_meta('mmdet', 's', classes, f.read())
    state = make_release_checkpoint(
        str(path), release_maskrcnn_keys('s', len(classes)), meta)
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


@pytest.mark.e2e
def test_release_maskrcnn_evaluates_and_converts(coco_root, tmp_path):
    """tools/test.py reads the release file as it is; the converter writes
    the same tensors under the model's names, every one of the release's
    (so the converted file evaluates as the raw one did: evaluated once,
    here raw; a converted file is evaluated by the Semantic FPN test)."""
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
    assert sorted(out['state_dict']) == sorted(state)
    assert all(torch.equal(out['state_dict'][k], v) for k, v in state.items())

    # Every tensor in its place in the model, shapes included.
    with torch.device('meta'):
        model = maskrcnn_model()
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in out['state_dict'].items()}


@pytest.mark.e2e
def test_release_semantic_fpn_converts_and_evaluates(ade_root, tmp_path):
    # mmseg 0.x saved ADE20KDataset.CLASSES / PALETTE (the same 150 names
    # and colours as mmseg 1.2's METAINFO, compared in the 0.30.0 wheel).
    ade = ADE20KDataset.METAINFO
    release = tmp_path / 'sem_fpn_convmlp_s_ade20k.pth'
    with open(osp.join(REPO, SEMFPN)) as f:
        meta = release_meta('mmseg', 's', ade['classes'], f.read(),
                            palette=ade['palette'])
    state = make_release_checkpoint(str(release),
                                    release_semantic_fpn_keys('s'), meta)
    converted = tmp_path / 'converted.pth'
    options = segmentation_options()
    conv = run(python_tool(CONVERTER, SEMFPN, str(release), str(converted),
                           '--cfg-options', *options), tmp_path)
    assert conv.returncode == 0, explain(conv)
    assert 'mmseg_version 0.17.0' in conv.stdout
    out = torch.load(str(converted), weights_only=True)
    assert len(out['meta']['dataset_meta']['palette']) == 150
    assert sorted(out['state_dict']) == sorted(state)
    assert all(torch.equal(out['state_dict'][k], v) for k, v in state.items())
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


@pytest.mark.e2e
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
