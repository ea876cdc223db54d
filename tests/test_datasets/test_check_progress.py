"""The data checks show a progress bar with the time left when a dataset
has more files than ``PROGRESS_FROM`` (thousands of images take minutes to
read), and nothing for small ones. The limit is lowered here so that the
tiny built-in datasets cross it."""
import os.path as osp

import pytest

from convmlp_mm.datasets.checks import (
    check_coco_content,
    check_seg_dataset,
    images,
)


def _check_coco(coco_root):
    check_coco_content(
        osp.join(coco_root, 'annotations', 'instances_train2017.json'),
        img_dir=osp.join(coco_root, 'train2017'))


def _check_seg(ade_root):
    check_seg_dataset(osp.join(ade_root, 'images', 'training'),
                      osp.join(ade_root, 'annotations', 'training'),
                      name='train_dataloader.dataset')


@pytest.mark.parametrize('limit, shown', [(1, True), (1000, False)])
def test_coco_image_files_show_progress_past_the_limit(
        coco_root, capfd, monkeypatch, limit, shown):
    monkeypatch.setattr(images, 'PROGRESS_FROM', limit)
    _check_coco(coco_root)
    out = capfd.readouterr().err  # progress goes to stderr
    # 8 training images (tests/conftest.py): mmengine's bar counts them and
    # gives the time left.
    assert ('checking 8 image files of' in out and '8/8' in out and
            'ETA' in out) == shown, out


def test_segmentation_files_show_progress_past_the_limit(
        ade_root, capfd, monkeypatch):
    monkeypatch.setattr(images, 'PROGRESS_FROM', 1)
    _check_seg(ade_root)
    out = capfd.readouterr().err  # progress goes to stderr
    assert 'checking 4 train_dataloader.dataset images and masks' in out
    assert '4/4' in out and 'ETA' in out
