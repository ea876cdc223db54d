"""The built-in synthetic datasets: real formats, reproducible, careful."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from convmlp_mm.datasets import (
    MARKER,
    SyntheticDatasetError,
    make_ade20k_dataset,
    make_coco_dataset,
)

from helpers import load_tool, tree_digest

SMALL = dict(num_train=6, num_val=3, image_size=(96, 64))


def test_coco_loads_and_masks_match_boxes(tmp_path):
    root = make_coco_dataset(tmp_path / 'coco', classes=('a', 'b'), **SMALL)
    assert root == str(tmp_path / 'coco')
    for split, count in (('train', 6), ('val', 3)):
        coco = COCO(osp.join(root, 'annotations',
                             f'instances_{split}2017.json'))
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == [
            'a', 'b']
        assert len(coco.getImgIds()) == count
        for img_id in coco.getImgIds():
            info = coco.loadImgs(img_id)[0]
            img = cv2.imread(osp.join(root, f'{split}2017', info['file_name']))
            assert img.shape == (64, 96, 3)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            assert 2 <= len(anns) <= 4
            for ann in anns:
                mask = coco.annToMask(ann)
                ys, xs = np.nonzero(mask)
                x, y, w, h = ann['bbox']
                # The polygon's pixels span its box (to a pixel).
                assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
                assert abs(xs.max() + 1 - (x + w)) <= 1.5
                assert abs(ys.max() + 1 - (y + h)) <= 1.5
                assert ann['area'] == mask.sum() > 0
                assert ann['category_id'] in (1, 2) and ann['iscrowd'] == 0


def test_ade20k_labels_in_range_and_match_images(tmp_path):
    root = make_ade20k_dataset(tmp_path / 'ade', num_classes=4, **SMALL)
    seen = set()
    for sub, count in (('training', 6), ('validation', 3)):
        imgs = sorted(os.listdir(osp.join(root, 'images', sub)))
        anns = sorted(os.listdir(osp.join(root, 'annotations', sub)))
        assert len(imgs) == count
        assert [a[:-4] for a in anns] == [i[:-4] for i in imgs]
        for name in anns:
            label = cv2.imread(osp.join(root, 'annotations', sub, name),
                               cv2.IMREAD_UNCHANGED)
            assert label.shape == (64, 96) and label.dtype == np.uint8
            assert label.max() <= 4 and (label == 0).any()
            seen |= set(np.unique(label).tolist())
    assert seen == {0, 1, 2, 3, 4}


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = make_coco_dataset(tmp_path / 'a', seed=3, **SMALL)
    b = make_coco_dataset(tmp_path / 'b', seed=3, **SMALL)
    c = make_coco_dataset(tmp_path / 'c', seed=4, **SMALL)
    assert tree_digest(a) == tree_digest(b)
    assert tree_digest(a) != tree_digest(c)
    d = make_ade20k_dataset(tmp_path / 'd', seed=3, **SMALL)
    e = make_ade20k_dataset(tmp_path / 'e', seed=3, **SMALL)
    assert tree_digest(d) == tree_digest(e)


def test_reuse_and_refuse(tmp_path):
    root = make_coco_dataset(tmp_path / 'coco', **SMALL)
    before = {p: os.stat(osp.join(root, p)).st_mtime_ns
              for p in tree_digest(root)}
    assert make_coco_dataset(tmp_path / 'coco', **SMALL) == root
    after = {p: os.stat(osp.join(root, p)).st_mtime_ns
             for p in tree_digest(root)}
    assert before == after  # reused, not rewritten
    with pytest.raises(SyntheticDatasetError, match='other arguments'):
        make_coco_dataset(tmp_path / 'coco', seed=1, **SMALL)
    with pytest.raises(SyntheticDatasetError, match='other arguments'):
        make_ade20k_dataset(tmp_path / 'coco', **SMALL)

    other = tmp_path / 'mine'
    other.mkdir()
    (other / 'notes.txt').write_text('precious')
    with pytest.raises(SyntheticDatasetError, match='not empty'):
        make_ade20k_dataset(other, **SMALL)
    assert os.listdir(other) == ['notes.txt']

    empty = tmp_path / 'empty'
    empty.mkdir()
    assert osp.isfile(osp.join(make_coco_dataset(empty, **SMALL), MARKER))
    # Nothing half-written is left beside the datasets.
    assert sorted(os.listdir(tmp_path)) == ['coco', 'empty', 'mine']


@pytest.mark.parametrize('kwargs, match', [
    (dict(image_size=(16, 64)), 'image_size'),
    (dict(image_size=(64, )), 'image_size'),
    (dict(num_val=0), 'num_val'),
    (dict(classes=('a', 'a')), 'distinct'),
    (dict(classes=tuple('abcdefgh')), 'classes are supported'),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(SyntheticDatasetError, match=match):
        make_coco_dataset(tmp_path / 'x', **kwargs)
    assert not (tmp_path / 'x').exists()


def test_cli(tmp_path, capsys):
    """tools/make_dataset.py's ``main`` in process (no model, no runner)."""
    status = load_tool('tools/make_dataset.py').main(
        ['ade20k', str(tmp_path / 'ade'), '--num-train', '2', '--num-val',
         '1', '--image-size', '64', '48'])
    assert status in (0, None)
    assert '"train": {"images": 2}' in capsys.readouterr().out
    assert len(os.listdir(tmp_path / 'ade' / 'images' / 'validation')) == 1
