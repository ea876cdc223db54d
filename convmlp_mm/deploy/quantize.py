"""int8 for CPUs: ONNX Runtime's static quantization (QDQ format,
per-channel int8 weights, uint8 activations, min-max calibration) of an
exported graph, calibrated on images run through the config's own test
pipeline and data preprocessor; and the comparison of the int8 file with
the fp32 one or with PyTorch (``tools/deploy/quantize_int8.py``)."""
import contextlib
import copy
import io
import os.path as osp
import shutil
import sys
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
from mmengine.config import Config
from mmengine.utils import ProgressBar

from convmlp_mm.checkpoint import write_atomically
from convmlp_mm.config import leaf_datasets, scope_registry
from convmlp_mm.datasets.image_files import list_images
from convmlp_mm.deploy.export import load_full_checkpoint, model_from_config
from convmlp_mm.deploy.networks import ExportNetwork, model_kind
from convmlp_mm.deploy.runtime import (
    OrtNetwork,
    read_onnx,
    roi_head_path,
    use_onnxruntime,
)
from convmlp_mm.errors import ConfigError

# The op types quantize_int8 quantizes (see the comment at its call).
QUANTIZED_OPS = ['Conv', 'MatMul', 'Gemm', 'Relu', 'Add', 'MaxPool',
                 'Resize']


def quantizable_ops() -> List[str]:
    """The op types ONNX Runtime's quantization has a rule for."""
    from onnxruntime.quantization.registry import (
        QDQRegistry,
        QLinearOpsRegistry,
    )
    return sorted(set(QDQRegistry) | set(QLinearOpsRegistry))


def check_ops(ops: Sequence[str]) -> List[str]:
    """``ops`` when ONNX Runtime can quantize each, else a
    :class:`ConfigError` naming the ones it cannot."""
    known = quantizable_ops()
    unknown = [op for op in ops if op not in known]
    if unknown or not ops:
        raise ConfigError(
            f'--ops {" ".join(unknown) or "(none)"}: ONNX Runtime quantizes '
            f'only {", ".join(known)}')
    return list(ops)


def dataset_images(cfg: Config, loader: str = 'train_dataloader'
                   ) -> List[str]:
    """The image files of ``cfg``'s ``loader`` dataset (every leaf of a
    wrapper such as ``RepeatDataset``), in the dataset's order."""
    from mmengine.registry import DefaultScope, init_default_scope
    if loader not in cfg or 'dataset' not in cfg[loader]:
        raise ConfigError(f'The config has no {loader}.dataset to take '
                          'images from; pass a folder of images.')
    registry = scope_registry(cfg.default_scope, 'DATASETS')
    paths: List[str] = []
    init_default_scope(cfg.default_scope)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        for leaf in leaf_datasets(cfg[loader]['dataset']):
            with contextlib.redirect_stdout(io.StringIO()):
                # pycocotools prints its progress reading the annotations
                dataset = registry.build(dict(leaf, pipeline=[]))
            paths += [dataset.get_data_info(i)['img_path']
                      for i in range(len(dataset))]
    return paths


def pick_images(cfg: Config, count: int, folder: Optional[str] = None,
                loader: str = 'train_dataloader') -> List[str]:
    """``count`` images spread evenly over ``folder`` (its image files) or
    over the config's ``loader`` dataset."""
    if count < 1:
        raise ConfigError(f'the number of images must be at least 1, got '
                          f'{count}')
    if folder is not None:
        if not osp.isdir(folder):
            raise FileNotFoundError(f'Image folder not found: {folder}')
        paths = list_images(folder)
        where = folder
    else:
        paths = dataset_images(cfg, loader)
        where = f'the config\'s {loader}.dataset'
    if not paths:
        raise ConfigError(f'No images in {where}.')
    index = np.unique(np.linspace(0, len(paths) - 1,
                                  min(count, len(paths))).round())
    return [paths[int(i)] for i in index]


def test_pipeline(cfg: Config):
    """The config's test pipeline without annotation loading (own images
    have none), as the inferencers use it."""
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope, init_default_scope
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if not str(t.get('type', '')).endswith('LoadAnnotations')]
    init_default_scope(cfg.default_scope)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return Compose(steps)


def calibration_inputs(model, cfg, image_paths: Sequence[str]
                       ) -> List[np.ndarray]:
    """One network input (NCHW float32) per image: the config's test
    pipeline (without annotation loading) and ``model.data_preprocessor``,
    as the inferencers and the Runner prepare them."""
    import torch
    from mmengine.dataset import pseudo_collate
    if not image_paths:
        raise ValueError('No calibration images given.')
    pipeline = test_pipeline(cfg)
    inputs = []
    for path in image_paths:
        data = pseudo_collate([pipeline(dict(img_path=path, img_id=0))])
        with torch.no_grad():
            batch = model.data_preprocessor(data, False)['inputs']
        inputs.append(batch.float().numpy())
    return inputs


class _Reader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over arrays, with
    mmengine's progress bar (images done, time left): calibration runs the
    whole fp32 graph on each input, minutes for many large images. ONNX
    Runtime asks for the next input when it has run the last one."""

    def __init__(self, name: str, inputs: Iterable[np.ndarray]):
        self.items = [{name: x} for x in inputs]
        self.given = 0
        self.progress = None

    def get_next(self):
        if self.progress is None:
            self.progress = ProgressBar(len(self.items), file=sys.stderr)
        elif self.progress.completed < len(self.items):
            self.progress.update()
            if self.progress.completed == len(self.items):
                self.progress.file.write('\n')  # as track_progress ends
        if self.given >= len(self.items):
            return None
        self.given += 1
        return self.items[self.given - 1]


def quantize_int8(fp32_path: str, out_path: str,
                  inputs: Sequence[np.ndarray],
                  per_channel: bool = True,
                  op_types: Sequence[str] = QUANTIZED_OPS) -> str:
    """Write the int8 (QDQ) version of ``fp32_path`` to ``out_path``,
    calibrated on ``inputs``, quantizing the ops ``op_types``; keeps the
    graph's ``convmlp_mm.*`` metadata so the runtime handles it as the fp32
    file, and a two-stage detector's RoI-head weights beside it. Both are
    written crash-safely (a ``.partial`` renamed into place; a full disk is
    a :class:`~convmlp_mm.errors.DiskFullError`). Returns ``out_path``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    if not inputs:
        raise ValueError('quantize_int8 needs calibration inputs.')
    source = read_onnx(fp32_path)
    name = source.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        # Shape inference and constant folding first, as ONNX Runtime's
        # quantization guide asks; the symbolic pass is skipped because it
        # does not follow every op of the dynamo exporter's graph.
        pre = osp.join(tmp, 'pre.onnx')
        quant_pre_process(fp32_path, pre, skip_symbolic_shape=True)
        quantized_path = osp.join(tmp, 'int8.onnx')
        quantize_static(
            pre, quantized_path, _Reader(name, inputs),
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # The convolutions and channel MLPs hold the work. ReLU, Add,
            # MaxPool and Resize are quantized too, so the int8 tensors
            # between them and the convolutions need no dequantize/quantize
            # pair: RetinaNet-S at 800x1344 ran in 454 ms against 559 ms
            # with the first three alone (ONNX Runtime fp32: 1218 ms), and
            # its outputs moved less (1.0e-2 against 1.6e-2 of the range;
            # the demo-trained model on one 192x256 calibration input).
            # LayerNorm and GELU stay fp32 (LN unharmed).
            op_types_to_quantize=list(op_types),
            extra_options=dict(CalibTensorRangeSymmetric=False))
        quantized = onnx.load(quantized_path)
    del quantized.metadata_props[:]
    for entry in source.metadata_props:
        quantized.metadata_props.add().CopyFrom(entry)
    write_atomically(lambda partial: onnx.save(quantized, partial),
                     out_path, lambda: quantized.ByteSize())
    roi_head = roi_head_path(fp32_path)
    if osp.isfile(roi_head):
        write_atomically(
            lambda partial: shutil.copyfile(roi_head, partial),
            roi_head_path(out_path), osp.getsize(roi_head))
    return out_path


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clip(0).prod(-1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter,
                              1e-9)


def match_detections(ref, other, score_thr: float = 0.3,
                     iou_thr: float = 0.5) -> Dict[str, int]:
    """How many of ``ref``'s detections (mmdet ``pred_instances``) scored
    at least ``score_thr`` have one in ``other`` (same score floor) of the
    same class overlapping by IoU >= ``iou_thr`` (greedy, best score
    first, each matched once)."""
    def above(inst):
        keep = (inst.scores >= score_thr).cpu().numpy()
        return (inst.bboxes.cpu().numpy()[keep],
                inst.labels.cpu().numpy()[keep])

    (ref_boxes, ref_labels), (boxes, labels) = above(ref), above(other)
    used = np.zeros(len(boxes), bool)
    matched = 0
    iou = _box_iou(ref_boxes, boxes) if len(ref_boxes) and len(boxes) \
        else np.zeros((len(ref_boxes), len(boxes)))
    for i in range(len(ref_boxes)):  # mmdet sorts by score
        fits = (labels == ref_labels[i]) & ~used & (iou[i] >= iou_thr)
        if fits.any():
            used[np.argmax(np.where(fits, iou[i], -1))] = True
            matched += 1
    return dict(reference=len(ref_boxes), other=len(boxes), matched=matched)


def _pytorch_network(model):
    """``model``'s network part as ONNX Runtime's is called: a float32
    array in, the outputs (in the exported order) as arrays out."""
    import torch
    network = ExportNetwork(model).eval()

    def run(x: np.ndarray) -> List[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in network(torch.from_numpy(x))]
    return run


def compare_int8(config: Config, fp32_path: str, int8_path: str,
                 image_paths: Sequence[str], score_thr: float = 0.3,
                 checkpoint: Optional[str] = None) -> Dict:
    """The int8 file against a reference on ``image_paths``: the fp32 file,
    or, with ``checkpoint``, PyTorch running that checkpoint (the model the
    files were exported from). ``max_rel`` (largest |raw output difference|
    over the largest |reference output|, over every output and image) and,
    through the model's own post-processing, ``detections``
    (:func:`match_detections` summed over the images) or
    ``pixel_agreement`` (fraction of equal labels in the segmentation
    maps)."""
    import torch
    from mmengine.dataset import pseudo_collate
    int8 = OrtNetwork(int8_path)
    models = [model_from_config(copy.deepcopy(config)),
              use_onnxruntime(model_from_config(copy.deepcopy(config)),
                              int8)]
    if checkpoint is None:
        networks = [OrtNetwork(fp32_path), int8]
        models[0] = use_onnxruntime(models[0], networks[0])
    else:
        load_full_checkpoint(models[0], checkpoint)
        networks = [_pytorch_network(models[0]), int8]
    kind = model_kind(models[0])
    pipeline = test_pipeline(config)
    max_rel = 0.0
    totals = dict(reference=0, other=0, matched=0)
    equal = pixels = 0
    for path in image_paths:
        data = pseudo_collate([pipeline(dict(img_path=path, img_id=0))])
        with torch.no_grad():
            x = models[0].data_preprocessor(data, False)['inputs']
        x = x.float().numpy()
        ref, got = networks[0](x), networks[1](x)
        for a, b in zip(ref, got):
            scale = max(float(np.abs(a).max()), 1e-12) if a.size else 1.0
            diff = float(np.abs(a - b).max()) if a.size else 0.0
            max_rel = max(max_rel, diff / scale)
        with torch.no_grad():
            outs = [m.test_step(data)[0] for m in models]
        if kind == 'segmentor':
            maps = [o.pred_sem_seg.data.cpu().numpy() for o in outs]
            equal += int((maps[0] == maps[1]).sum())
            pixels += maps[0].size
        else:
            counts = match_detections(outs[0].pred_instances,
                                      outs[1].pred_instances, score_thr)
            for key in totals:
                totals[key] += counts[key]
    report = dict(kind=kind, images=len(image_paths), max_rel=max_rel,
                  reference='pytorch' if checkpoint else 'fp32')
    if kind == 'segmentor':
        report['pixel_agreement'] = equal / max(pixels, 1)
    else:
        report['detections'] = dict(totals, score_thr=score_thr)
    return report
