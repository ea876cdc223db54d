"""One label-to-name map per run (convmlp_mm.config.classes): the names a
run gives labels 0, 1, ... are the ones mmdet's own CocoDataset gives them
(the file's category order), every annotation file and checkpoint of the
run agrees, and no name stands for two labels. mmdet's CocoDataset is the
independent source; nothing is trained here."""
import json
import logging
import os.path as osp
import shutil

import pytest
import torch
from mmdet.datasets import CocoDataset
from mmengine.config import Config
from mmengine.logging import MMLogger

from convmlp_mm.apis import build_inferencer
from convmlp_mm.config import build_model, prepare_train_config
from convmlp_mm.errors import ConfigError

import helpers
from tools_run import CLASSES, RETINANET

TINY_RETINANET = osp.join(helpers.DATA, 'configs',
                          'retinanet_tiny_learns_shapes.py')
train_tool = helpers.load_tool('tools/train.py')
test_tool = helpers.load_tool('tools/test.py')
inference_tool = helpers.load_tool('tools/inference.py')


def _ann(root, split):
    return osp.join(root, 'annotations', f'instances_{split}2017.json')


def _rewrite_categories(root, split, order=None, ids=None):
    """List the file's categories in ``order`` (names), or give them new
    ``ids`` ({old id: new id}, annotations too)."""
    path = _ann(root, split)
    with open(path) as f:
        data = json.load(f)
    if ids:
        for category in data['categories']:
            category['id'] = ids[category['id']]
        for ann in data['annotations']:
            ann['category_id'] = ids[ann['category_id']]
    if order:
        by_name = {c['name']: c for c in data['categories']}
        data['categories'] = [by_name[name] for name in order]
    with open(path, 'w') as f:
        json.dump(data, f)
    return data


@pytest.fixture
def shapes_root(coco_root, tmp_path):
    """A copy of the session's shapes data (ids 1, 2, 3: circle, square,
    triangle), to rewrite."""
    root = str(tmp_path / 'data')
    shutil.copytree(coco_root, root)
    return root


def mmdet_label_names(root, split, classes):
    """label -> category name, as mmdet's CocoDataset numbers the file."""
    dataset = CocoDataset(
        data_root=root, ann_file=f'annotations/instances_{split}2017.json',
        data_prefix=dict(img=f'{split}2017/'), pipeline=[], test_mode=True,
        metainfo=dict(classes=tuple(classes)))
    dataset.full_init()
    with open(_ann(root, split)) as f:
        names = {c['id']: c['name'] for c in json.load(f)['categories']}
    return {label: names[cat_id]
            for cat_id, label in dataset.cat2label.items()}


def train_cfg(root, tmp_path, *argv):
    args = train_tool.parse_args([RETINANET, '--data-root', root,
                                  '--work-dir', str(tmp_path / 'w'), *argv])
    return prepare_train_config(args)


def error_line(main, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    line = str(info.value.code)
    assert line.startswith('error: ') and '\n' not in line, line
    return line


def test_classes_auto_names_labels_as_mmdets_coco_dataset(shapes_root,
                                                          tmp_path):
    """Categories listed as ids 90, 1, 7 (before: --classes auto sorted
    them by id and called every object another class's name)."""
    for split in ('train', 'val'):
        _rewrite_categories(shapes_root, split, ids={1: 90, 2: 1, 3: 7})
    cfg = train_cfg(shapes_root, tmp_path, '--classes', 'auto')
    ours = tuple(cfg.train_dataloader.dataset.metainfo.classes)
    assert ours == CLASSES  # the file's order, not (square, triangle, ...)
    for split in ('train', 'val'):
        theirs = mmdet_label_names(shapes_root, split, ours)
        assert {i: ours[i] for i in range(len(ours))} == theirs


def test_a_val_file_in_another_order_stops(shapes_root, tmp_path):
    """Same names and ids, another category order in the val file: mmdet
    numbers each file in its own order, so validation would score the
    model's circles as triangles (before: exit 0). Other ids in the same
    order number the same."""
    _rewrite_categories(shapes_root, 'val', ids={1: 5, 2: 9, 3: 2})
    assert mmdet_label_names(shapes_root, 'val', CLASSES) == \
        mmdet_label_names(shapes_root, 'train', CLASSES)
    cfg = train_cfg(shapes_root, tmp_path, '--classes', 'auto')
    assert tuple(cfg.val_dataloader.dataset.metainfo.classes) == CLASSES
    _rewrite_categories(shapes_root, 'val',
                        order=('triangle', 'circle', 'square'))
    train = mmdet_label_names(shapes_root, 'train', CLASSES)
    val = mmdet_label_names(shapes_root, 'val', CLASSES)
    assert train[0] == 'circle' and val[0] == 'triangle'  # the premise
    for flags in (['--classes', 'auto'], []):  # the config names CLASSES
        with pytest.raises(ConfigError) as info:
            train_cfg(shapes_root, tmp_path, '--cfg-options',
                      'model.bbox_head.num_classes=3',
                      *[f'{loader}.dataset.metainfo.classes={list(CLASSES)}'
                        for loader in ('train_dataloader', 'val_dataloader',
                                       'test_dataloader')], *flags)
        message = str(info.value)
        assert "('triangle', 'circle', 'square')" in message
        assert "('circle', 'square', 'triangle')" in message
        assert f'list the categories of {_ann(shapes_root, "val")} in the ' \
            f'order of {_ann(shapes_root, "train")}' in message


def test_a_config_order_other_than_the_files_stops(shapes_root, tmp_path):
    """--classes square,circle,triangle on a file listing circle, square,
    triangle: mmdet's label 0 holds circles (before: named 'square')."""
    order = ('square', 'circle', 'triangle')
    assert mmdet_label_names(shapes_root, 'train', order)[0] == 'circle'
    line = error_line(train_tool.main, [
        RETINANET, '--data-root', shapes_root, '--work-dir',
        str(tmp_path / 'w'), '--classes', ','.join(order)])
    assert "('circle', 'square', 'triangle')" in line
    assert "('square', 'circle', 'triangle')" in line
    assert "label 0 holds 'circle' objects but would be called 'square'" \
        in line and '--classes auto' in line


def test_a_subset_must_be_numbered_as_the_config_names_it(shapes_root,
                                                          tmp_path):
    """--classes-subset-ok: mmdet numbers the file's categories among the
    config's from 0, so they must come first, in the file's order (before:
    the 80 COCO names with a cat-and-dog file trained cats as 'person')."""
    wanted = ('circle', 'square', 'star')
    assert mmdet_label_names(shapes_root, 'train', wanted) == {
        0: 'circle', 1: 'square'}
    cfg = train_cfg(shapes_root, tmp_path, '--classes', ','.join(wanted),
                    '--classes-subset-ok')
    assert cfg.model.bbox_head.num_classes == 3
    line = error_line(train_tool.main, [
        RETINANET, '--data-root', shapes_root, '--work-dir',
        str(tmp_path / 'w'), '--classes', 'star,circle,square',
        '--classes-subset-ok'])
    assert "label 0 holds 'circle' objects but would be called 'star'" \
        in line


@pytest.fixture
def permuted_checkpoint(tmp_path):
    """The tiny RetinaNet's untrained checkpoint whose meta records the
    shapes in another order than its config (circle, square, triangle)."""
    cfg = Config.fromfile(TINY_RETINANET)
    torch.manual_seed(0)
    model = build_model(cfg)
    path = str(tmp_path / 'permuted.pth')
    torch.save(dict(meta=dict(dataset_meta=dict(
        classes=('square', 'circle', 'triangle'))),
        state_dict=model.state_dict()), path)
    return path


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.mark.e2e  # tools/test.py builds its runner (about 2.5 s)
def test_test_tool_refuses_a_checkpoint_of_another_order_and_inference_agrees(
        coco_root, permuted_checkpoint, tmp_path):
    """Before: tools/test.py scored the model's label 0 ('square') as the
    data's 'circle', exit 0, while tools/inference.py called it 'square'."""
    line = error_line(test_tool.main, [
        TINY_RETINANET, permuted_checkpoint, '--data-root', coco_root,
        '--work-dir', str(tmp_path / 'test'), '--cfg-options',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'])
    assert "('square', 'circle', 'triangle')" in line
    assert "('circle', 'square', 'triangle')" in line
    assert "label 0 is 'square' to the model but 'circle' to the data" in line

    # Inference names label 0 as the model was trained: 'square'.
    logger = MMLogger.get_current_instance()
    lines = Lines()
    logger.addHandler(lines)
    try:
        inferencer, _ = build_inferencer(TINY_RETINANET, permuted_checkpoint,
                                         device='cpu')
    finally:
        logger.removeHandler(lines)
    assert inferencer.model.dataset_meta['classes'] == (
        'square', 'circle', 'triangle')
    assert any('tools/test.py refuses this pair' in text
               for text in lines.lines), lines.lines
    # --classes may rename the checkpoint's classes, not reorder them.
    with pytest.raises(ConfigError, match=r"puts 'square' at label 1 but "
                       r'.* trained with it at label 0'):
        build_inferencer(TINY_RETINANET, permuted_checkpoint, device='cpu',
                         classes=list(CLASSES))


@pytest.mark.parametrize('flag', [['--classes', 'circle,circle,square'],
                                  ['--cfg-options', 'train_dataloader.dataset.'
                                   "metainfo.classes=['circle','square','circle']"]])
def test_a_name_given_twice_is_refused(shapes_root, tmp_path, flag):
    line = error_line(train_tool.main, [
        TINY_RETINANET, '--data-root', shapes_root, '--work-dir',
        str(tmp_path / 'w'), *flag])
    assert 'one name for two classes' in line, line


def test_coco_categories_sharing_a_name_are_refused(shapes_root, tmp_path):
    data = _rewrite_categories(shapes_root, 'train')
    data['categories'][2]['name'] = 'circle'  # ids 1 and 3: 'circle'
    with open(_ann(shapes_root, 'train'), 'w') as f:
        json.dump(data, f)
    # mmdet would give 'circle' two labels (the premise).
    assert list(mmdet_label_names(shapes_root, 'train',
                                  ('circle', 'square')).values()) == [
        'circle', 'square', 'circle']
    for flags in (['--classes', 'auto'], ['--classes', 'circle,square']):
        line = error_line(train_tool.main, [
            RETINANET, '--data-root', shapes_root, '--work-dir',
            str(tmp_path / 'w'), *flags])
        assert "lists 2 categories named 'circle' (ids 1, 3)" in line, line


def test_a_class_list_naming_a_class_twice_is_refused(ade_root, tmp_path):
    root = str(tmp_path / 'ade')
    shutil.copytree(ade_root, root)
    with open(osp.join(root, 'classes.txt'), 'w') as f:
        f.write('circle\nsquare\ncircle\n')
    line = error_line(train_tool.main, [
        'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py',
        '--data-root', root, '--work-dir', str(tmp_path / 'w'),
        '--classes', 'auto'])
    assert 'classes.txt names labels 0, 2' in line and \
        'one name for two classes' in line, line


def test_a_class_list_in_another_order_than_the_config_stops(ade_root,
                                                             tmp_path):
    """classes.txt line i is label i (before: only the counts were
    compared)."""
    root = str(tmp_path / 'ade')
    shutil.copytree(ade_root, root)
    with open(osp.join(root, 'classes.txt'), 'w') as f:
        f.write('square\ncircle\ntriangle\n')
    line = error_line(train_tool.main, [
        'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py',
        '--data-root', root, '--work-dir', str(tmp_path / 'w'),
        '--classes', 'circle,square,triangle'])
    assert "label 0 holds 'square' pixels but would be called 'circle'" \
        in line, line


def test_inference_refuses_a_name_given_twice(tmp_path):
    image = str(tmp_path / 'x.png')
    import cv2
    import numpy as np
    cv2.imwrite(image, np.zeros((32, 32, 3), np.uint8))
    line = error_line(inference_tool.main, [
        TINY_RETINANET, 'none', image, '--out-dir', str(tmp_path / 'out'),
        '--classes', 'a', 'a', 'b'])
    assert "--classes names labels 0, 1 'a'" in line, line
