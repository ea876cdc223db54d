"""tools/inference.py on a mix of good and bad inputs: each bad one is
reported and skipped (results.json "failures"), the good ones are written
under names that never overwrite each other, special files are refused
without being opened, and the run ends with one error line."""
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from convmlp_mm.apis.inputs import (
    InferenceInputError,
    check_regular_file,
    unique_name,
)

from helpers import REPO
from huge_images import (
    call_with_memory_limit,
    inference_tool_error,
    write_huge_png,
)
from tools_run import explain, python_tool, run

# RetinaNet on the tiny ConvMLP (0.1M backbone parameters; 3 classes, test
# scale 128x96): the tool's input handling is the same for any backbone.
TINY_RETINANET = osp.join(REPO, 'tests', 'data', 'configs',
                          'retinanet_tiny_learns_shapes.py')
CLASSES = ('circle', 'square', 'triangle')


@pytest.fixture(scope='module')
def model_files(tmp_path_factory):
    """The tiny RetinaNet's config and a checkpoint of its untrained
    weights, as tools/train.py leaves one."""
    from mmdet.registry import MODELS
    folder = tmp_path_factory.mktemp('model')
    cfg = Config.fromfile(TINY_RETINANET)
    assert cfg.model.bbox_head.num_classes == len(CLASSES)
    config = str(folder / 'retinanet_shapes.py')
    cfg.dump(config)
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    checkpoint = str(folder / 'epoch_1.pth')
    torch.save(dict(meta=dict(dataset_meta=dict(classes=CLASSES)),
                    state_dict=model.state_dict()), checkpoint)
    return config, checkpoint


def write_image(path, seed):
    image = np.random.RandomState(seed).randint(0, 255, (48, 64, 3),
                                                np.uint8)
    assert cv2.imwrite(str(path), image)
    return str(path)


def test_unique_names_follow_the_order_of_the_inputs():
    used = set()
    assert [unique_name(s, used) for s in ('x', 'x', 'X', 'x_1', 'y')] == \
        ['x', 'x_1', 'X_2', 'x_1_1', 'y']


def test_special_files_are_refused_without_opening(tmp_path):
    fifo = str(tmp_path / 'pipe.jpg')
    os.mkfifo(fifo)  # opening it for reading would block forever
    with pytest.raises(InferenceInputError, match='is a FIFO'):
        check_regular_file(fifo)
    with pytest.raises(InferenceInputError, match='is a device'):
        check_regular_file('/dev/zero')  # endless


@pytest.mark.e2e
def test_bad_inputs_are_skipped_and_listed(tmp_path, model_files):
    config, checkpoint = model_files
    first, second = tmp_path / 'a', tmp_path / 'b'
    first.mkdir()
    second.mkdir()
    good = [write_image(first / 'x.jpg', 1), write_image(second / 'x.jpg', 2),
            write_image(second / 'x.png', 3)]
    truncated = write_image(first / 'cut.jpg', 4)
    with open(truncated, 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])
    not_image = str(first / 'notes.jpg')
    with open(not_image, 'w') as f:
        f.write('not an image')
    fifo = str(first / 'pipe.jpg')
    os.mkfifo(fifo)
    endless = str(first / 'zero.jpg')
    os.symlink('/dev/zero', endless)
    not_video = str(tmp_path / 'clip.mp4')
    with open(not_video, 'w') as f:
        f.write('not a video')
    out_dir = str(tmp_path / 'out')
    # A fork of the preloaded tool server (tests/tool_runner.py): the run
    # builds a model in the tool's own process, as a user's would.
    proc = run(python_tool('inference.py', config, checkpoint, str(first),
                           str(second), not_video, '--out-dir', out_dir,
                           '--device', 'cpu'), tmp_path, timeout=300)
    assert proc.returncode == 1, explain(proc)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: 5 input(s) skipped, listed under '
                           f'"failures" in {out_dir}/results.json')
    assert 'Traceback' not in proc.stderr
    with open(osp.join(out_dir, 'results.json')) as f:
        summary = json.load(f)
    failed = {e['input']: e['error'] for e in summary['failures']}
    assert set(failed) == {truncated, not_image, fifo, endless, not_video}
    assert 'not a complete JPEG' in failed[truncated]
    assert 'not a complete JPEG' in failed[not_image]
    assert 'is a FIFO' in failed[fifo]
    assert 'is a device' in failed[endless]
    assert 'has no frames' in failed[not_video]
    assert [e['input'] for e in summary['results']] == good
    # One output each: the same file name in two folders, and x.jpg next
    # to x.png, never overwrite each other.
    assert [osp.basename(e['vis']) for e in summary['results']] == \
        ['x.jpg', 'x_1.jpg', 'x_2.png']
    assert all(osp.isfile(e['vis']) for e in summary['results'])


@pytest.mark.e2e
def test_image_of_too_many_pixels_is_refused_before_decoding(tmp_path,
                                                             model_files):
    """Issue 23: a 48 KB PNG of 20000x20000 pixels (1.2 GB as RGB) took
    the tool past 8 GiB. Run where 1 GiB more address space is all there
    is: a decode fails there instead of taking the machine."""
    config, checkpoint = model_files
    huge = write_huge_png(tmp_path / 'huge.png')
    assert os.path.getsize(huge) < 2**17
    good = write_image(tmp_path / 'good.jpg', 0)
    out_dir = str(tmp_path / 'out')
    outcome = call_with_memory_limit(
        inference_tool_error, [config, checkpoint, huge, good, '--out-dir',
                               out_dir, '--device', 'cpu'], timeout=240)
    assert outcome[0] == 'returned', outcome
    assert outcome[1].startswith('error: 1 input(s) skipped, listed under '
                                 f'"failures" in {out_dir}/results.json; '
                                 f'first: input: {huge} is 20000x20000 '
                                 'pixels (400.0 megapixels), more than the '
                                 '89478485 pixels an image may have')
    assert outcome[1].endswith('CONVMLP_MAX_PIXELS=400000000.')
    with open(osp.join(out_dir, 'results.json')) as f:
        summary = json.load(f)
    assert [e['input'] for e in summary['results']] == [good]


def test_pixel_limit_is_read_before_decoding(tmp_path, monkeypatch):
    """The inference's one image reader takes the data checks' setting;
    lowered under a tiny image, the image is refused before decoding."""
    from convmlp_mm.apis.inputs import read_image
    image = write_image(tmp_path / 'x.jpg', 0)  # 64x48: 3072 pixels
    assert read_image(image).shape == (48, 64, 3)
    monkeypatch.setenv('CONVMLP_MAX_PIXELS', '3071')
    with pytest.raises(InferenceInputError, match=re.escape(
            f'input: {image} is 64x48 pixels (0.0 megapixels), more than '
            'the 3071 pixels an image may have')):
        read_image(image)


def test_neck_of_another_width_is_named_before_building(model_files,
                                                        tmp_path):
    from convmlp_mm.apis import inference
    from convmlp_mm.errors import ConfigError
    config, _ = model_files
    image = write_image(tmp_path / 'x.jpg', 0)
    # docs/model_zoo.md ("The backbone's four levels"): ConvMLP-L emits 96,
    # 192, 384, 768 channels; the tiny config's neck reads 16, 32, 48, 64.
    with pytest.raises(ConfigError, match=r'model.neck.in_channels is '
                       r'\[16, 32, 48, 64\] but the backbone '
                       r"\(arch='l', .*emits \[96, 192, 384, 768\]"):
        inference(config, None, image, str(tmp_path / 'out'),
                  cfg_options={'model.backbone.arch': 'l'})
