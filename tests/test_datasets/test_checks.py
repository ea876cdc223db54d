"""Bad dataset content, through tools/train.py --preflight (nothing is
built): each case ends with one error line naming the file, the image or
annotation id and what is wrong; boxes mmdet drops on purpose are counted.
A NaN metric from mmseg's real IoUMetric stops the run."""
import json
import math
import os
import os.path as osp
import re
import shutil
import struct
import uuid

import cv2
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.structures import SegDataSample

from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset
from convmlp_mm.datasets.checks import check_coco_content
from convmlp_mm.engine import NonFiniteMetricError

from helpers import load_tool
from huge_images import write_huge_png
from tools_run import CLASSES, RETINANET, SEMFPN, detection_options

SEG_OPTIONS = ['model.backbone.init_cfg=None']


@pytest.fixture(scope='module')
def coco_source(tmp_path_factory):
    return make_coco_dataset(
        str(tmp_path_factory.mktemp('src') / 'coco'), num_train=3,
        num_val=2, image_size=(64, 48), classes=CLASSES)


@pytest.fixture(scope='module')
def ade_source(tmp_path_factory):
    return make_ade20k_dataset(
        str(tmp_path_factory.mktemp('src') / 'ade'), num_train=3,
        num_val=2, image_size=(64, 64))


@pytest.fixture
def coco(coco_source, tmp_path):
    root = str(tmp_path / 'coco')
    shutil.copytree(coco_source, root)
    return root


@pytest.fixture
def ade(ade_source, tmp_path):
    root = str(tmp_path / 'ade')
    shutil.copytree(ade_source, root)
    return root


def preflight(config, data_root, options):
    """tools/train.py --preflight; the error line, or '' when it passes."""
    tool = load_tool('tools/train.py')
    argv = [config, '--data-root', data_root, '--preflight',
            '--cfg-options', *options]
    try:
        tool.main(argv)
    except SystemExit as exc:
        assert exc.code not in (0, None)
        message = str(exc.code)
        assert message.startswith('error: ') and '\n' not in message
        return message
    return ''


def train_json(root):
    return osp.join(root, 'annotations', 'instances_train2017.json')


def edit_train_json(root, change):
    path = train_json(root)
    with open(path) as f:
        data = json.load(f)
    change(data)
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def coco_error(root, change=None):
    path = edit_train_json(root, change) if change else None
    return path, preflight(RETINANET, root, detection_options(RETINANET))


def test_intact_data_passes(coco, ade):
    assert coco_error(coco)[1] == ''
    assert preflight(SEMFPN, ade, SEG_OPTIONS) == ''


def test_truncated_jpeg_names_the_file_and_image_id(coco):
    image = osp.join(coco, 'train2017', '000000000002.jpg')
    with open(image, 'rb') as f:
        data = f.read()
    with open(image, 'wb') as f:
        f.write(data[:len(data) // 2])
    message = coco_error(coco)[1]
    assert 'image id 2' in message and image in message
    assert 'not a complete JPEG' in message


def test_missing_image_file(coco):
    image = osp.join(coco, 'train2017', '000000000003.jpg')
    os.remove(image)
    message = coco_error(coco)[1]
    assert 'image id 3' in message and f'{image} does not exist' in message


def set_first(key, value):
    def change(data):
        data['annotations'][0][key] = value
    return change


@pytest.mark.parametrize('change,expected', [
    (set_first('bbox', [1, 1, -5, 4]), 'negative width or height'),
    (set_first('category_id', 99), 'category_id 99, which is not in'),
    (set_first('bbox', ['1', '2', '3', '4']), 'must be a finite number'),
    (set_first('bbox', [1, 2, math.nan, 4]), 'must be a finite number'),
    (set_first('area', math.nan), 'area nan, not a finite number'),
    (lambda d: d['annotations'][0].pop('area'), 'has no "area"'),
    (set_first('image_id', 77), 'points to an image id that is not in'),
], ids=['negative width', 'unknown category', 'string box', 'NaN box',
        'NaN area', 'no area', 'missing image'])
def test_bad_annotation_names_file_and_annotation_id(coco, change, expected):
    path, message = coco_error(coco, change)
    assert message.startswith(f'error: {path}: annotation id 1 (image id')
    assert expected in message


def test_repeated_image_id(coco):
    def repeat(data):
        data['images'][1]['id'] = data['images'][0]['id']
    path, message = coco_error(coco, repeat)
    assert f'{path}: image id 1 appears 2 times' in message


def test_empty_box_is_counted_not_silent(coco):
    def flatten(data):
        data['annotations'][0]['bbox'][3] = 0
    path = edit_train_json(coco, flatten)
    # mmdet's CocoDataset drops boxes under one pixel: allowed, counted.
    assert check_coco_content(path)['dropped'] == 1
    assert coco_error(coco)[1] == ''


def write_mask(root, split, index, mask):
    path = osp.join(root, 'annotations', split,
                    f'ADE_{"train" if split == "training" else "val"}_'
                    f'{index:08d}.png')
    cv2.imwrite(path, mask)
    return path


def test_mask_label_outside_the_classes(ade):
    mask = np.zeros((64, 64), np.uint8)
    mask[:8, :8] = 200  # ADE20K has 150 classes: labels 1..150
    path = write_mask(ade, 'training', 2, mask)
    message = preflight(SEMFPN, ade, SEG_OPTIONS)
    assert f'mask {path} holds label(s) 200 outside the 150 classes' in \
        message


def test_mask_of_another_size_than_its_image(ade):
    path = write_mask(ade, 'training', 1, np.ones((32, 64), np.uint8))
    message = preflight(SEMFPN, ade, SEG_OPTIONS)
    assert f'mask {path} is 64x32 but its image' in message
    assert 'is 64x64' in message


def test_validation_masks_with_nothing_to_score(ade):
    for index in (1, 2):  # 0 is "other": ignored with reduce_zero_label
        write_mask(ade, 'validation', index, np.zeros((64, 64), np.uint8))
    message = preflight(SEMFPN, ade, SEG_OPTIONS)
    assert 'val_dataloader.dataset' in message
    assert 'is all ignore index (255)' in message and 'NaN' in message


def test_png_images_among_jpg(ade):
    jpg = osp.join(ade, 'images', 'training', 'ADE_train_00000003.jpg')
    png = jpg[:-4] + '.png'
    cv2.imwrite(png, cv2.imread(jpg))
    os.remove(jpg)
    message = preflight(SEMFPN, ade, SEG_OPTIONS)
    assert 'ADE_train_00000003.png' in message
    assert 'do not end in img_suffix ".jpg"' in message


class AllIgnoredSegmentor(BaseModel):
    """Predicts class 0 everywhere for ground truth that is all ignore
    index: what validation masks with only out-of-range labels give."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        samples = []
        for _ in range(len(inputs)):
            sample = SegDataSample()
            sample.pred_sem_seg = PixelData(
                data=torch.zeros(1, 4, 4, dtype=torch.long))
            sample.gt_sem_seg = PixelData(
                data=torch.full((1, 4, 4), 255, dtype=torch.long))
            samples.append(sample)
        return samples


class TwoClassDataset(torch.utils.data.Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return dict(inputs=torch.zeros(1))


def test_nan_metric_stops_the_run(tmp_path):
    runner = Runner(
        model=AllIgnoredSegmentor(),
        work_dir=str(tmp_path),
        experiment_name=f'nan_metric_{uuid.uuid4().hex[:8]}',
        val_dataloader=dict(
            dataset=TwoClassDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=1, num_workers=0,
            collate_fn=dict(type='default_collate')),
        val_cfg=dict(),
        val_evaluator=Evaluator([IoUMetric(iou_metrics=['mIoU'])]),
        custom_hooks=[dict(type='NonFiniteMetricHook')])
    with pytest.raises(NonFiniteMetricError, match=r'aAcc=nan'):
        runner.val()


def test_tools_load_images_through_the_checked_transform():
    from mmengine.config import Config

    from convmlp_mm.config import use_checked_loading
    cfg = Config.fromfile(RETINANET)
    # mmdet's RetinaNet base: one LoadImageFromFile per train/val/test
    # pipeline.
    assert use_checked_loading(cfg) == 3
    assert cfg.train_dataloader.dataset.pipeline[0].type == \
        'CheckedLoadImageFromFile'


def test_truncated_jpeg_found_when_read(tmp_path, monkeypatch):
    """Past the images read before training, the loading transform names
    a truncated image when training reaches it."""
    from convmlp_mm.datasets.checks import images

    from toy_runner import write_tiny_coco
    data_root, config = write_tiny_coco(tmp_path)
    image = osp.join(data_root, 'train2017', '000000000001.jpg')
    with open(image, 'rb') as f:
        data = f.read()
    with open(image, 'wb') as f:
        f.write(data[:len(data) * 2 // 3])
    monkeypatch.setattr(images, 'MAX_FILES_READ', 0)
    tool = load_tool('tools/train.py')
    with pytest.raises(SystemExit) as info:
        tool.main([config, '--data-root', data_root, '--work-dir',
                   str(tmp_path / 'work')])
    message = str(info.value.code)
    assert message.startswith(f'error: image: {image} is not a complete '
                              'JPEG file')


# Issue 23, item 4: what the JSON says of its images, checked against the
# files' headers; item 3: the pixel limit in the data checks.

def set_image(index, **fields):
    def change(data):
        data['images'][index].update(fields)
    return change


@pytest.mark.parametrize('width,height', [(0, 48), (64, -5), (0, 0),
                                          ('64', 48)],
                         ids=['zero', 'negative', 'both zero', 'string'])
def test_image_size_in_the_json_must_be_positive(coco, width, height):
    path, message = coco_error(coco, set_image(1, width=width,
                                               height=height))
    # mmdet's size filter would drop image 2 and its objects in silence.
    assert message.startswith(
        f"error: {path}: image id 2 ('000000000002.jpg') has width "
        f'{width!r} and height {height!r}; both must be positive')
    assert "Set them to the image file's width and height" in message


def test_image_of_another_size_than_the_json_says(coco):
    image = osp.join(coco, 'train2017', '000000000003.jpg')
    assert cv2.imwrite(image, np.full((8, 8, 3), 200, np.uint8))
    path, message = coco_error(coco, set_image(2, width=128, height=96))
    # Today this trains on boxes outside the pixels, to a NaN loss.
    assert message == (
        f'error: {path}: image id 3: {image} is 8x8 pixels as decoded, '
        'but its JSON entry says 128x96; boxes and sizes would not match '
        "the pixels. Give it the file's width and height (and "
        'boxes in its pixels), or replace the file with the image the '
        'annotation describes.')


def test_sizes_are_compared_as_opencv_turns_the_image(coco):
    """A JPEG stored 64x48 with EXIF orientation 6 decodes (cv2, mmcv) to
    48x64: that is the size its JSON must give."""
    from PIL import Image
    image = osp.join(coco, 'train2017', '000000000001.jpg')
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees clockwise
    Image.new('RGB', (64, 48)).save(image, exif=exif.tobytes())
    height, width = cv2.imread(image).shape[:2]
    assert (width, height) == (48, 64)
    message = coco_error(coco)[1]  # the JSON says 64x48
    assert message.startswith(f'error: {train_json(coco)}: image id 1: '
                              f'{image} is 48x64 pixels as decoded (turned '
                              'by its EXIF orientation 6), but its JSON '
                              'entry says 64x48')
    assert coco_error(coco, set_image(0, width=48, height=64))[1] == ''


def test_empty_annotation_list(coco):
    def empty(data):
        data['annotations'] = []
    path, message = coco_error(coco, empty)
    # Today: "need at least one array to concatenate" once built.
    assert message.startswith(f'error: {path} has no objects '
                              '("annotations": [])')
    assert 'Point the config at the file with the annotations' in message


@pytest.mark.parametrize('relative', [True, False],
                         ids=['dot-dot', 'absolute'])
def test_file_name_that_leaves_the_data_root(coco, tmp_path, relative):
    outside = str(tmp_path / 'outside.jpg')
    shutil.copy(osp.join(coco, 'train2017', '000000000001.jpg'), outside)
    name = osp.relpath(outside, osp.join(coco, 'train2017')) if relative \
        else outside
    assert name.startswith('../') == relative
    path, message = coco_error(coco, set_image(0, file_name=name))
    # Today mmdet reads and trains on the file outside the root.
    assert message.startswith(
        f'error: {path}: image id 1 ({name!r}): its file_name leads outside '
        f'the data root {coco}, to {outside}, which mmdet would read.')


def test_image_of_too_many_pixels_in_a_dataset(coco):
    huge = write_huge_png(osp.join(coco, 'train2017', 'huge.png'))
    path, message = coco_error(coco, set_image(
        0, file_name='huge.png', width=20000, height=20000))
    assert message.startswith(
        f'error: {path}: image id 1: {huge} is 20000x20000 pixels (400.0 '
        'megapixels), more than the 89478485 pixels an image may have')
    assert message.endswith('Downscale it, or raise the limit: '
                            'CONVMLP_MAX_PIXELS=400000000.')


def test_pixel_limit_setting_applies_to_segmentation_folders(
        ade, monkeypatch):
    # The ADE20K images are 64x64: 4096 pixels.
    monkeypatch.setenv('CONVMLP_MAX_PIXELS', '4095')
    message = preflight(SEMFPN, ade, SEG_OPTIONS)
    image = osp.join(ade, 'images', 'training', 'ADE_train_00000001.jpg')
    assert message.startswith(
        f'error: train_dataloader.dataset image: {image} is 64x64 pixels '
        '(0.0 megapixels), more than the 4095 pixels')
    monkeypatch.setenv('CONVMLP_MAX_PIXELS', '4096')
    assert preflight(SEMFPN, ade, SEG_OPTIONS) == ''


def test_image_of_too_many_pixels_in_a_segmentation_folder(ade):
    """A JPEG whose frame header says 20000x20000 (then nothing to decode):
    Pillow's DecompressionBombError was the user's traceback."""
    image = osp.join(ade, 'images', 'training', 'ADE_train_00000001.jpg')
    frame = b'\xff\xc0' + struct.pack('>HBHHB', 17, 8, 20000, 20000, 3) + \
        b'\x01\x11\x00\x02\x11\x00\x03\x11\x00'
    with open(image, 'wb') as f:
        f.write(b'\xff\xd8' + frame + b'\xff\xd9')
    message = preflight(SEMFPN, ade, SEG_OPTIONS)
    assert message.startswith(
        f'error: train_dataloader.dataset image: {image} is 20000x20000 '
        'pixels (400.0 megapixels), more than the 89478485 pixels')


@pytest.mark.parametrize('value', ['lots', '0', '-1'])
def test_pixel_limit_setting_that_is_not_a_number(coco, monkeypatch, value):
    monkeypatch.setenv('CONVMLP_MAX_PIXELS', value)
    message = coco_error(coco)[1]
    assert message.startswith(
        f"error: CONVMLP_MAX_PIXELS='{value}' is not a positive whole "
        'number of pixels.')


def test_loading_transform_checks_header_before_decoding(tmp_path,
                                                         monkeypatch):
    """Past the images the checks read, the transform reads the header:
    the JSON's size and the pixel limit, before mmcv decodes the file."""
    from convmlp_mm.datasets.transforms import CheckedLoadImageFromFile
    from convmlp_mm.errors import AnnotationError
    image = str(tmp_path / 'x.png')
    assert cv2.imwrite(image, np.zeros((8, 8, 3), np.uint8))
    load = CheckedLoadImageFromFile()
    assert load(dict(img_path=image, width=8, height=8))['img'].shape == \
        (8, 8, 3)
    with pytest.raises(AnnotationError, match=re.escape(
            f'image: {image} is 8x8 pixels as decoded, but its annotation '
            'says 128x96')):
        load(dict(img_path=image, width=128, height=96))
    monkeypatch.setenv('CONVMLP_MAX_PIXELS', '63')
    with pytest.raises(AnnotationError, match=re.escape(
            f'image: {image} is 8x8 pixels (0.0 megapixels), more than the '
            '63 pixels an image may have')):
        load(dict(img_path=image))
