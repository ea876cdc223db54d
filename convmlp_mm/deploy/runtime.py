"""ONNX Runtime sessions for exported ConvMLP graphs, and the glue that
hands their raw outputs to mmdet's and mmseg's own post-processing."""
import json
import os.path as osp
import re
from typing import List, Optional, Sequence, Union

import numpy as np

from convmlp_mm.checkpoint import safe_torch_load
from convmlp_mm.deploy.networks import model_kind, split_outputs
from convmlp_mm.errors import OnnxModelError

EXPORT_AGAIN = 'export it again with tools/deploy/export_onnx.py'
# ONNX Runtime's prefix: "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : ".
_ORT_PREFIX = re.compile(r'^\[ONNXRuntimeError\] : \d+ : \w+ : ')


def onnx_read_error(path: str, exc: BaseException) -> OnnxModelError:
    """The one-line error for an ``.onnx`` that ONNX Runtime or the onnx
    package (``exc``) could not read: what is wrong with ``path`` and the
    fix."""
    text = _ORT_PREFIX.sub('', str(exc).strip().splitlines()[0]
                           if str(exc).strip() else type(exc).__name__)
    text = re.sub(r'^Load model from .* failed:', '', text).strip()
    if re.search(r'escapes model directory|points outside the directory',
                 text):
        found = re.search(r'External data path: ("[^"]*")', text) or \
            re.search(r"but ('[^']*') points outside", text)
        where = f' ({found.group(1)})' if found else ''
        return OnnxModelError(
            f'ONNX model {path} keeps weights in a file outside its folder'
            f'{where}, which is refused (a model must not reach files '
            'elsewhere). Move the data file into the model\'s '
            f'folder and point the model at it there, or {EXPORT_AGAIN} '
            '(its files embed the weights).')
    missing = re.search(r'External data path does not exist: "([^"]*)"|'
                        r'should be stored in (.*), but', text)
    if missing:
        return OnnxModelError(
            f'ONNX model {path} keeps weights in a file that is missing: '
            f'{missing.group(1) or missing.group(2)}. Copy that file there, '
            f'or {EXPORT_AGAIN}.')
    if re.search(r'Protobuf parsing failed|Error parsing message|'
                 r'No graph was found', text):
        return OnnxModelError(
            f'Could not read ONNX model {path}: it is truncated, corrupt or '
            f'not an ONNX file ({text}). Copy it again, or {EXPORT_AGAIN}.')
    return OnnxModelError(
        f'Could not load ONNX model {path}: {text}. Pass an .onnx that '
        f'tools/deploy/export_onnx.py wrote, or {EXPORT_AGAIN}.')


def _ort_errors() -> tuple:
    """Every exception type of ONNX Runtime's native module (they share no
    base class but ``Exception``)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state
    return tuple(v for v in vars(state).values() if isinstance(v, type)
                 and issubclass(v, Exception))


def read_onnx(path: str):
    """``onnx.load(path)`` (weights included) of an ``.onnx`` written by
    ``tools/deploy/export_onnx.py``; an :class:`OnnxModelError` naming the
    file when it is missing, damaged, not ONNX, has no graph, reaches
    outside its folder or lacks the exporter's metadata."""
    import onnx
    from google.protobuf.message import DecodeError
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'ONNX model not found: {path} (write one with '
            'tools/deploy/export_onnx.py)')
    try:
        proto = onnx.load(path)
    except (DecodeError, onnx.checker.ValidationError, OSError,
            ValueError) as exc:
        raise onnx_read_error(path, exc) from exc
    if not proto.graph.node or not proto.graph.input:
        raise onnx_read_error(path, ValueError('No graph was found'))
    if not any(p.key == 'convmlp_mm.kind' for p in proto.metadata_props):
        raise not_exported_error(path)
    return proto


def not_exported_error(path: str) -> OnnxModelError:
    """The error for a readable graph that our exporter did not write."""
    return OnnxModelError(
        f'{path} is an ONNX model but not one written by '
        'tools/deploy/export_onnx.py (it has no convmlp_mm.kind metadata, '
        'so its outputs cannot be matched to the model\'s heads): '
        f'{EXPORT_AGAIN}.')


class OrtNetwork:
    """An ONNX Runtime session over an exported graph: call it with an NCHW
    float32 array, get its outputs (numpy) in the graph's order.

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads (``None``: ONNX Runtime's default).
        providers: Execution providers (default: CPU).
        optimization: ``'all'`` (every graph optimisation: conv + BN,
            LayerNorm and GELU fusions, layout changes), ``'basic'`` or
            ``'none'``.
        profile_prefix: Write ONNX Runtime's per-op profile (JSON) with
            this prefix; :meth:`end_profiling` returns its path.
    """

    def __init__(self, path: str, threads: Optional[int] = None,
                 providers: Optional[Sequence[str]] = None,
                 optimization: str = 'all',
                 profile_prefix: Optional[str] = None):
        import onnxruntime as ort
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'ONNX model not found: {path} (write one with '
                'tools/deploy/export_onnx.py)')
        options = ort.SessionOptions()
        options.graph_optimization_level = dict(
            all=ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            basic=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            none=ort.GraphOptimizationLevel.ORT_DISABLE_ALL)[optimization]
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        try:
            self.session = ort.InferenceSession(
                path, options, providers=list(providers or
                                              ['CPUExecutionProvider']))
        except _ort_errors() as exc:
            raise onnx_read_error(path, exc) from exc
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.kind = meta.get('convmlp_mm.kind')
        self.dataset_meta = json.loads(
            meta['convmlp_mm.dataset_meta']) \
            if 'convmlp_mm.dataset_meta' in meta else None
        self.path = path

    def __call__(self, x: np.ndarray) -> List[np.ndarray]:
        return self.session.run(None, {self.input_name: x})

    def end_profiling(self) -> str:
        return self.session.end_profiling()


def _run(network: OrtNetwork, batch_inputs) -> List:
    import torch
    outputs = network(batch_inputs.detach().float().cpu().numpy())
    return [torch.from_numpy(o).to(batch_inputs.device) for o in outputs]


def attach_onnxruntime(model, network: OrtNetwork):
    """Make ``model`` (an mmdet detector or mmseg segmentor, built from
    the same config) run its network part in ``network``: its
    ``predict`` (through ``test_step``, the inferencers and the Runner)
    then feeds ONNX Runtime's outputs into the model's own heads'
    ``predict_by_feat`` (mmdet) or ``decode_head.predict_by_feat`` and
    ``postprocess_result`` (mmseg). Two-stage detectors also run their RoI
    heads in PyTorch, so their weights must be loaded in ``model``.

    Changes ``model`` in place (instance attributes) and returns it."""
    kind = model_kind(model)
    if network.kind is None:
        raise not_exported_error(network.path)
    if network.kind != kind:
        raise OnnxModelError(
            f'{network.path} holds a {network.kind} network but the config '
            f'builds a {kind}: pass the config it was exported from.')

    if kind == 'segmentor':
        def encode_decode(inputs, batch_img_metas):
            logits = split_outputs(kind, _run(network, inputs))['seg_logits']
            return model.decode_head.predict_by_feat(logits, batch_img_metas)

        model.encode_decode = encode_decode
        return model

    def predict(batch_inputs, batch_data_samples, rescale: bool = True):
        outs = split_outputs(kind, _run(network, batch_inputs))
        metas = [s.metainfo for s in batch_data_samples]
        if kind == 'single_stage':
            results = model.bbox_head.predict_by_feat(
                outs['cls_scores'], outs['bbox_preds'],
                batch_img_metas=metas, rescale=rescale)
        else:
            proposals = model.rpn_head.predict_by_feat(
                outs['cls_scores'], outs['bbox_preds'],
                batch_img_metas=metas, rescale=False)
            results = model.roi_head.predict(
                tuple(outs['feats']), proposals, batch_data_samples,
                rescale=rescale)
        return model.add_pred_to_datasample(batch_data_samples, results)

    if kind not in ('single_stage', 'two_stage'):
        raise ValueError(f'{network.path}: a bare backbone has no '
                         'predictions to post-process.')
    model.predict = predict
    return model


def roi_head_path(onnx_path: str) -> str:
    """Where the export puts a two-stage detector's RoI-head weights (they
    run in PyTorch): beside the ``.onnx``."""
    return osp.splitext(onnx_path)[0] + '.roi_head.pth'


def use_onnxruntime(model, onnx: Union[str, OrtNetwork],
                    threads: Optional[int] = None,
                    providers: Optional[Sequence[str]] = None):
    """:func:`attach_onnxruntime` from a file (or an open
    :class:`OrtNetwork`): also takes the class names recorded at export
    and, for a two-stage detector, loads the RoI-head weights saved beside
    the ``.onnx`` (weights only). Returns ``model``."""
    network = onnx if isinstance(onnx, OrtNetwork) else OrtNetwork(
        onnx, threads=threads, providers=providers)
    onnx_path = network.path
    if network.dataset_meta:
        model.dataset_meta = network.dataset_meta
    if model_kind(model) == 'two_stage':
        weights = roi_head_path(onnx_path)
        if not osp.isfile(weights):
            raise FileNotFoundError(
                f'{weights} not found: a two-stage detector\'s RoI heads run '
                f'in PyTorch with the weights tools/deploy/export_onnx.py '
                f'writes beside {onnx_path}; export again.')
        model.roi_head.load_state_dict(
            safe_torch_load(weights, weights), strict=True)
    return attach_onnxruntime(model, network)
