"""Class names and counts (convmlp_mm.config.classes and the tools' --classes
flags): heads that disagree with their datasets, annotation files with a
subset of the config's classes, --classes auto for COCO files and
segmentation folders. Config level: nothing is trained here."""
import pytest
from mmengine.config import Config

from convmlp_mm.config import (
    head_classes,
    prepare_test_config,
    prepare_train_config,
    set_classes,
)
from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset
from convmlp_mm.errors import ConfigError

import helpers
from tools_run import MASKRCNN, RETINANET, SEMFPN

# Two of COCO's 80 names: mmdet's CocoDataset would keep them silently.
COCO_NAMES = ('cat', 'dog')


@pytest.fixture(scope='module')
def catdog_root(tmp_path_factory):
    return make_coco_dataset(
        str(tmp_path_factory.mktemp('data') / 'catdog'), num_train=2,
        num_val=1, image_size=(64, 48), classes=COCO_NAMES)


@pytest.fixture(scope='module')
def ade_root(tmp_path_factory):
    return make_ade20k_dataset(
        str(tmp_path_factory.mktemp('data') / 'ade'), num_train=2,
        num_val=1, image_size=(64, 64))


def train_cfg(*argv):
    args = helpers.load_tool('tools/train.py').parse_args(list(argv))
    return prepare_train_config(args)


def test_two_coco_names_under_the_80_class_config_stop(catdog_root,
                                                        tmp_path):
    with pytest.raises(ConfigError) as info:
        train_cfg(RETINANET, '--data-root', catdog_root,
                  '--work-dir', str(tmp_path))
    message = str(info.value)
    assert 'holds 2 of the 80 classes' in message
    assert '--classes auto' in message and '--classes-subset-ok' in message


def test_subset_switch_lets_an_intended_subset_train(catdog_root, tmp_path):
    # The file's categories first, in its order: mmdet numbers them 0, 1.
    options = ['model.bbox_head.num_classes=3'] + [
        f"{loader}.dataset.metainfo.classes=['cat','dog','bird']"
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')]
    for switch, extra in ((['--classes-subset-ok'], []),
                          ([], ['classes_subset_ok=True'])):
        cfg = train_cfg(RETINANET, '--data-root', catdog_root,
                        '--work-dir', str(tmp_path), *switch,
                        '--cfg-options', *options, *extra)
        assert cfg.model.bbox_head.num_classes == 3


def test_subset_switch_does_not_let_labels_shift(catdog_root, tmp_path):
    """mmdet's CocoDataset numbers the file's cat and dog 0 and 1, which
    the 80-class config calls person and bicycle (before: trained so)."""
    with pytest.raises(ConfigError) as info:
        train_cfg(RETINANET, '--data-root', catdog_root,
                  '--work-dir', str(tmp_path), '--classes-subset-ok')
    message = str(info.value)
    assert "label 0 holds 'cat' objects but would be called 'person'" in \
        message and "('cat', 'dog')" in message


def test_classes_auto_sets_datasets_and_retinanet_head(catdog_root,
                                                       tmp_path):
    cfg = train_cfg(RETINANET, '--data-root', catdog_root,
                    '--work-dir', str(tmp_path), '--classes', 'auto')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert tuple(cfg[loader].dataset.metainfo.classes) == COCO_NAMES
    assert cfg.model.bbox_head.num_classes == 2


def test_each_coco_file_is_parsed_once_per_run(catdog_root, tmp_path,
                                                monkeypatch):
    """--classes auto, the JSON, category, content and subset checks and
    the evaluator's ann_file all read the parsed file of one CocoFiles."""
    from collections import Counter

    from convmlp_mm.datasets.checks import coco
    parsed = Counter()
    parse = coco._parse

    def counting(path):
        parsed[path] += 1
        return parse(path)

    monkeypatch.setattr(coco, '_parse', counting)
    train_cfg(RETINANET, '--data-root', catdog_root, '--work-dir',
              str(tmp_path), '--classes', 'auto')
    assert len(parsed) == 2  # instances_train2017.json, instances_val2017
    assert set(parsed.values()) == {1}


def test_classes_auto_sets_maskrcnn_box_and_mask_heads_not_rpn(
        catdog_root, tmp_path):
    cfg = train_cfg(MASKRCNN, '--data-root', catdog_root,
                    '--work-dir', str(tmp_path), '--classes', 'auto')
    assert cfg.model.roi_head.bbox_head.num_classes == 2
    assert cfg.model.roi_head.mask_head.num_classes == 2
    # mmdet's RPN head keeps its one class, "object", whatever the data.
    assert 'num_classes' not in cfg.model.rpn_head


def test_classes_auto_sets_every_cascade_stage(tmp_path):
    path = tmp_path / 'cascade.py'
    path.write_text("_base_ = 'mmdet::cascade_rcnn/"
                    "cascade-mask-rcnn_r50_fpn_1x_coco.py'\n")
    cfg = Config.fromfile(str(path))
    set_classes(cfg, COCO_NAMES)
    heads = dict(head_classes(cfg.model))
    # mmdet's cascade base: three box stages, one mask head, RPN untouched.
    assert sorted(heads) == [
        'model.roi_head.bbox_head.0', 'model.roi_head.bbox_head.1',
        'model.roi_head.bbox_head.2', 'model.roi_head.mask_head']
    assert {h['num_classes'] for h in heads.values()} == {2}


def test_datasets_classes_without_head_num_classes_stop(catdog_root,
                                                        tmp_path):
    names = "['cat','dog']"
    with pytest.raises(ConfigError) as info:
        train_cfg(RETINANET, '--data-root', catdog_root,
                  '--work-dir', str(tmp_path), '--cfg-options',
                  f'train_dataloader.dataset.metainfo.classes={names}',
                  f'val_dataloader.dataset.metainfo.classes={names}')
    message = str(info.value)
    assert 'model.bbox_head.num_classes is 80' in message
    assert 'model.bbox_head.num_classes=2' in message


def test_semantic_fpn_head_that_disagrees_with_ade20k_stops(ade_root,
                                                            tmp_path):
    # mmseg's ADE20KDataset has 150 classes.
    with pytest.raises(ConfigError, match=r'model.decode_head.num_classes '
                       r'is 3 but train_dataloader has 150 classes'):
        train_cfg(SEMFPN, '--data-root', ade_root, '--work-dir',
                  str(tmp_path), '--cfg-options',
                  'model.decode_head.num_classes=3')


def test_classes_auto_reads_a_segmentation_folders_classes_txt(
        ade_root, tmp_path):
    with pytest.raises(ConfigError, match='classes.txt, which does not'):
        train_cfg(SEMFPN, '--data-root', ade_root, '--work-dir',
                  str(tmp_path), '--classes', 'auto')
    with open(f'{ade_root}/classes.txt', 'w') as f:
        f.write('circle\nsquare\ntriangle\n')
    try:
        cfg = train_cfg(SEMFPN, '--data-root', ade_root, '--work-dir',
                        str(tmp_path), '--classes', 'auto')
        args = helpers.load_tool('tools/test.py').parse_args(
            [SEMFPN, 'ckpt.pth', '--data-root', ade_root, '--work-dir',
             str(tmp_path), '--classes', 'auto'])
        test_cfg = prepare_test_config(args)
    finally:
        os_remove(f'{ade_root}/classes.txt')
    for config in (cfg, test_cfg):
        dataset = config.test_dataloader.dataset
        assert tuple(dataset.metainfo.classes) == (
            'circle', 'square', 'triangle')
        # ADE20KDataset refuses names that are not among its 150.
        assert dataset.type == 'BaseSegDataset'
        assert config.model.decode_head.num_classes == 3


def test_classes_by_name_on_the_command_line(catdog_root, tmp_path):
    cfg = train_cfg(RETINANET, '--data-root', catdog_root,
                    '--work-dir', str(tmp_path), '--classes', 'cat,dog')
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == \
        COCO_NAMES
    assert cfg.model.bbox_head.num_classes == 2


def os_remove(path):
    import os
    os.remove(path)


def test_a_segmentation_folders_class_list_against_150_classes_stops(
        ade_root, tmp_path):
    with open(f'{ade_root}/classes.txt', 'w') as f:
        f.write('circle\nsquare\ntriangle\n')
    try:
        with pytest.raises(ConfigError) as info:
            train_cfg(SEMFPN, '--data-root', ade_root, '--work-dir',
                      str(tmp_path))
        # mmseg's ADE20KDataset: 150 classes.
        assert 'names 3 classes but train_dataloader trains 150' in str(
            info.value)
        cfg = train_cfg(SEMFPN, '--data-root', ade_root, '--work-dir',
                        str(tmp_path), '--classes-subset-ok')
        assert cfg.model.decode_head.num_classes == 150
    finally:
        os_remove(f'{ade_root}/classes.txt')
