"""ONNX Runtime reproduces PyTorch through the whole inference path
(pipeline, mmdet's / mmseg's own post-processing, results.json, pictures)
at the size exported at and two others; int8 keeps the accuracy.

The models are the run's trained ones (tests/conftest.py: tiny RetinaNet and
Semantic FPN that learned the built-in shapes; tests/test_deploy/conftest.py
exports them), so the scores compared are those of models that detect and
segment, not of untrained ones whose mIoU sits at chance for any backend.

Tolerances are the issue's (issue 15): labels equal, boxes within 1e-3
relative, scores within 1e-4, label maps equal on >= 99.9% of pixels, int8
within 1 point of mIoU of PyTorch fp32."""
import os.path as osp

import mmcv
import numpy as np
import pytest

from convmlp_mm.apis import inference
from convmlp_mm.datasets.image_files import list_images

from tools_run import explain, python_tool, run


def _reads(artifact):
    """Marks a test end to end and puts it on the worker that holds
    ``artifact`` (pytest-xdist --dist loadgroup)."""
    def mark(test):
        return pytest.mark.e2e(pytest.mark.xdist_group(artifact)(test))
    return mark


DETECTOR = _reads('learned_detector')
SEGMENTOR = _reads('learned_segmentor')

# Test scales (width, height): the 128x96 / 64x64 pictures come out at the
# traced size, at a larger one and at a smaller one (network inputs
# 96x128, 224x320, 128x160 for RetinaNet; 64x64, 96x96, 48x48).
DET_SCALES = [(128, 96), (320, 224), (160, 160)]
SEG_SCALES = [(64, 64), (96, 96), (48, 48)]
DET_OPTIONS = {'model.test_cfg.score_thr': 0.0,
               'model.test_cfg.max_per_img': 20}
# Learned-model thresholds of tests/test_learning.py (measured, less a
# margin): the models these checks run on score well above chance.
LEARNED_MIOU = 70


def _images(folder, count=4):
    return list_images(folder)[:count]


def _both(deployed, images, out, scale, extra=None):
    options = {'test_dataloader.dataset.pipeline.1.scale': scale,
               **(extra or {})}
    out = out / f'{scale[0]}x{scale[1]}'
    torch_run = inference(deployed['config'], deployed['checkpoint'], images,
                          str(out / 'pytorch'), cfg_options=options)
    ort_run = inference(deployed['config'], deployed['onnx'], images,
                        str(out / 'ort'), cfg_options=options,
                        backend='onnxruntime')
    return torch_run, ort_run


def _by_box(prediction: dict) -> dict:
    """Detections in the order of their boxes: two detections whose scores
    tie (a barely trained model has many) may leave mmdet's sort in either
    order, which is not a difference between the backends."""
    boxes = np.round(np.asarray(prediction['bboxes']), 2)
    order = np.lexsort(boxes.T[::-1])
    return {key: np.asarray(prediction[key])[order]
            for key in ('labels', 'scores', 'bboxes')}


def _parity_lines(output):
    lines = [line for line in output.splitlines()
             if 'ONNX Runtime vs PyTorch' in line]
    assert len(lines) == 2, output
    for line in lines:
        rel = float(line.split('max rel ')[1].split()[0])
        assert rel <= 1e-4, line


@DETECTOR
def test_retinanet_export_reports_parity_at_two_sizes(deployed_detector):
    _parity_lines(deployed_detector['export_output'])


@SEGMENTOR
def test_semantic_fpn_export_reports_parity_at_two_sizes(deployed_segmentor):
    _parity_lines(deployed_segmentor['export_output'])


@DETECTOR
@pytest.mark.parametrize('scale', DET_SCALES)
def test_retinanet_same_detections(deployed_detector, tmp_path, scale):
    images = _images(osp.join(deployed_detector['data_root'], 'val2017'))
    torch_run, ort_run = _both(deployed_detector, images, tmp_path, scale,
                               DET_OPTIONS)
    assert torch_run['classes'] == ort_run['classes'] == \
        ['circle', 'square', 'triangle']
    assert len(torch_run['results']) == len(ort_run['results']) == 4
    for a, b in zip(torch_run['results'], ort_run['results']):
        pa, pb = _by_box(a['predictions']), _by_box(b['predictions'])
        assert len(pa['labels']) == 20  # max_per_img, score_thr 0
        np.testing.assert_array_equal(pb['labels'], pa['labels'])
        np.testing.assert_allclose(pb['scores'], pa['scores'], rtol=0,
                                   atol=1e-4)
        np.testing.assert_allclose(pb['bboxes'], pa['bboxes'], rtol=1e-3,
                                   atol=1e-3)
        # The same picture, drawn by mmdet's visualizer.
        assert osp.basename(a['vis']) == osp.basename(b['vis'])
        pic_a, pic_b = mmcv.imread(a['vis']), mmcv.imread(b['vis'])
        assert pic_a.shape == pic_b.shape
        assert (pic_a == pic_b).all(axis=2).mean() >= 0.999


@SEGMENTOR
@pytest.mark.parametrize('scale', SEG_SCALES)
def test_semantic_fpn_same_label_maps(deployed_segmentor, tmp_path, scale):
    images = _images(osp.join(deployed_segmentor['data_root'], 'images',
                              'validation'))
    torch_run, ort_run = _both(deployed_segmentor, images, tmp_path, scale)
    assert len(torch_run['results']) == len(ort_run['results']) == 4
    for a, b in zip(torch_run['results'], ort_run['results']):
        map_a = mmcv.imread(a['pred'], 'unchanged')
        map_b = mmcv.imread(b['pred'], 'unchanged')
        # Resized back to the 64x64 input by mmseg's post-processing.
        assert map_a.shape == map_b.shape == (64, 64)
        assert (map_a == map_b).mean() >= 0.999


@DETECTOR
def test_inference_tool_onnxruntime_backend(deployed_detector, tmp_path):
    out = tmp_path / 'ort'
    image = _images(osp.join(deployed_detector['data_root'], 'val2017'))[0]
    proc = run(python_tool('inference.py', deployed_detector['config'],
                           deployed_detector['onnx'], image, '--backend',
                           'onnxruntime', '--out-dir', str(out)), tmp_path,
               timeout=300)
    assert proc.returncode == 0, explain(proc)
    assert (out / 'results.json').is_file()
    assert (out / 'vis' / osp.basename(image)).is_file()


def test_inference_tool_onnx_file_missing(tmp_path, coco_root):
    """The tool's ``main`` in process: the file is checked before any
    model is built."""
    from helpers import load_tool
    missing = str(tmp_path / 'nope.onnx')
    config = 'configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py'
    with pytest.raises(SystemExit) as info:
        load_tool('tools/inference.py').main(
            [config, missing, osp.join(coco_root, 'val2017'), '--backend',
             'onnxruntime', '--out-dir', str(tmp_path / 'out')])
    assert str(info.value.code).startswith(
        f'error: ONNX model not found: {missing}')


@SEGMENTOR
def test_int8_keeps_miou_within_one_point(deployed_segmentor, tmp_path):
    """int8 (calibrated on 16 training pictures) scores within 1 point of
    mIoU of PyTorch fp32, on a model that scores far above chance."""
    import onnx

    from convmlp_mm.deploy import load_model, use_onnxruntime
    from convmlp_mm.deploy.evaluate import evaluate
    from convmlp_mm.deploy.quantize import calibration_inputs, quantize_int8
    config, data_root = deployed_segmentor['config'], \
        deployed_segmentor['data_root']
    model, cfg = load_model(config, deployed_segmentor['checkpoint'])
    train = _images(osp.join(data_root, 'images', 'training'), 16)
    int8 = str(tmp_path / 'semfpn_int8.onnx')
    quantize_int8(deployed_segmentor['onnx'], int8,
                  calibration_inputs(model, cfg, train))
    ops = {node.op_type for node in onnx.load(int8).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops  # QDQ format
    pytorch = evaluate(model, cfg, data_root)['mIoU']
    fp32 = evaluate(use_onnxruntime(load_model(config)[0],
                                    deployed_segmentor['onnx']), cfg,
                    data_root)['mIoU']
    quantized = evaluate(use_onnxruntime(load_model(config)[0], int8), cfg,
                         data_root)['mIoU']
    assert pytorch >= LEARNED_MIOU, pytorch  # a model that segments
    assert abs(fp32 - pytorch) < 0.01
    assert abs(quantized - pytorch) <= 1.0, (quantized, pytorch)
