"""Export a ConvMLP backbone, detector or segmentor to ONNX with torch's
dynamo exporter (dynamic height and width), then check the file: the ONNX
checker, and ONNX Runtime against PyTorch on random inputs at two sizes.

The graph holds the network part of the model (see
:mod:`convmlp_mm.deploy.networks`); its metadata records what the runtime
needs to put the rest back together (``convmlp_mm.kind``, the output names,
``convmlp_mm.dataset_meta``).
"""
import contextlib
import json
import os
import os.path as osp
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.utils import ProgressBar

from convmlp_mm.checkpoint import tensor_bytes, write_atomically
from convmlp_mm.config import build_model, checkpoint_classes
from convmlp_mm.deploy.networks import ExportNetwork
from convmlp_mm.deploy.runtime import OrtNetwork
from convmlp_mm.errors import ExportError  # noqa: F401
from convmlp_mm.models import channel_mlps_as, legacy_dataset_meta
from convmlp_mm.models.builder import backbone_from
from convmlp_mm.models.loading import load_model_checkpoint
from convmlp_mm.models.official import load_backbone_checkpoint

# ONNX Runtime against PyTorch, fp32: largest |difference| over the largest
# |PyTorch output|, per output. Different kernels (oneDNN, MLAS) reorder
# sums; 1e-4 of the output's range is far below what changes a prediction.
DEFAULT_TOLERANCE = 1e-4


def load_model(target: str, checkpoint: Optional[str] = None,
               cfg_options: Optional[dict] = None
               ) -> Tuple[nn.Module, Optional[Config]]:
    """A model in eval mode on the CPU, from a config file or a backbone
    size (``s``, ``m``, ``l``), with the weights of ``checkpoint`` loaded
    strictly (``None``: random weights, for trying the export).

    Returns the model and its config (``None`` for a bare size)."""
    if checkpoint is not None and not osp.isfile(checkpoint) and \
            not checkpoint.startswith(('http://', 'https://')):
        raise FileNotFoundError(
            f'Checkpoint not found: {checkpoint} (a .pth saved by '
            'tools/train.py, or "none" for random weights)')
    if not osp.isfile(target):
        model = backbone_from(target, cfg_options)[0]
        if checkpoint is not None:
            load_backbone_checkpoint(model, checkpoint)
        return model.eval(), None
    cfg = Config.fromfile(target)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = model_from_config(cfg, target)
    if checkpoint is not None:
        load_full_checkpoint(model, checkpoint)
    return model.eval(), cfg


# What mmseg warns while it builds a segmentor's losses: notes to its own
# developers and about training, not about a model run for inference.
LOSS_BUILD_WARNINGS = ('``build_loss`` would be deprecated',
                       'Default ``avg_non_ignore`` is False')


@contextlib.contextmanager
def loss_build_warnings_off():
    """Silence :data:`LOSS_BUILD_WARNINGS` (only those) meanwhile."""
    with warnings.catch_warnings():
        for text in LOSS_BUILD_WARNINGS:
            warnings.filterwarnings('ignore', message=text)
        yield


def model_from_config(cfg: Config, name: str = 'the config') -> nn.Module:
    """The detector or segmentor of ``cfg`` in eval mode, random weights,
    BatchNorm for one process, no ImageNet download (``cfg`` is changed:
    its backbone's ``init_cfg`` is dropped)."""
    from mmengine.model import revert_sync_batchnorm
    if cfg.get('default_scope') not in ('mmdet', 'mmseg'):
        raise ValueError(f'{name}: default_scope is '
                         f'{cfg.get("default_scope")!r}; expected an mmdet '
                         '(detector) or mmseg (segmentor) config.')
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # the checkpoint has everything
    with loss_build_warnings_off():
        model = build_model(cfg)
    return revert_sync_batchnorm(model).eval()


def load_full_checkpoint(model: nn.Module, checkpoint: str) -> dict:
    """Load a whole-model checkpoint (e.g. from ``tools/train.py``)
    strictly; returns its ``meta``."""
    if not osp.isfile(checkpoint) and not checkpoint.startswith(
            ('http://', 'https://')):
        raise FileNotFoundError(
            f'Checkpoint not found: {checkpoint} (a .pth saved by '
            'tools/train.py, e.g. work_dirs/<name>/epoch_12.pth)')
    loaded = load_model_checkpoint(model, checkpoint)
    meta = loaded.get('meta', {}) if isinstance(loaded, dict) else {}
    # The names the model was trained with, in its label order (mmcv 1's
    # CLASSES too); a name twice is refused (convmlp_mm.config.classes).
    classes = checkpoint_classes(meta, checkpoint)
    if classes:
        model.dataset_meta = dict(
            meta.get('dataset_meta') or legacy_dataset_meta(meta),
            classes=classes)
    return meta


def _json_safe(meta: dict) -> dict:
    return json.loads(json.dumps(meta, default=lambda o: list(o)
                                 if isinstance(o, (tuple, np.ndarray))
                                 else str(o)))


def export_onnx(model: nn.Module, out: str,
                shape: Sequence[int] = (320, 320),
                dataset_meta: Optional[dict] = None,
                opset: int = 20,
                check: Optional[Callable[[str], None]] = None) -> List[str]:
    """Write ``model``'s network (see :class:`ExportNetwork`) to ``out``
    with dynamic height and width, traced at ``shape`` (H, W). Weights are
    embedded in the file (one file; ONNX Runtime's quantization reads it),
    written crash-safely (a ``.partial`` renamed into place; a full disk is
    a :class:`~convmlp_mm.errors.DiskFullError`). ``check(partial)`` runs
    on the written file before it takes ``out``'s name: a check that
    raises leaves ``out`` as it was. Returns the output names."""
    network = ExportNetwork(model).eval()
    names = network.output_names()
    x = torch.randn(1, 3, *shape)
    dyn = {'input': {2: torch.export.Dim('height', min=32, max=4096),
                     3: torch.export.Dim('width', min=32, max=4096)}}
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    # The graph must not depend on the CPU that exported it: mlp_impl='auto'
    # computes the channel MLPs as 1x1 convolutions on AMD CPUs, so the
    # trace takes the F.linear path (2-D Gemms, docs/deployment.md) always.
    # The longest step (about 20 s for RetinaNet-S on 2 cores) says so
    # before it starts, and how long it took.
    print(f'tracing {network.kind} at {shape[0]}x{shape[1]} with '
          'torch.onnx.export (dynamo)...', flush=True)
    started = time.monotonic()
    with torch.no_grad(), warnings.catch_warnings(), \
            channel_mlps_as(network, 'linear'):
        warnings.simplefilter('ignore')
        program = torch.onnx.export(
            network, (x, ), dynamo=True, input_names=['input'],
            output_names=names, dynamic_shapes=({2: dyn['input'][2],
                                                 3: dyn['input'][3]}, ),
            opset_version=opset, external_data=False, optimize=True)
    print(f'traced in {time.monotonic() - started:.0f} s', flush=True)
    import onnx
    meta = dict(kind=network.kind, outputs=json.dumps(names),
                traced_shape=json.dumps(list(shape)))
    if dataset_meta:
        meta['dataset_meta'] = json.dumps(_json_safe(dataset_meta))

    def write(partial: str) -> None:
        program.save(partial, external_data=False)
        proto = onnx.load(partial)
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = f'convmlp_mm.{key}', value
        onnx.save(proto, partial)
        if check is not None:
            check(partial)

    # As checkpoints are: never a truncated .onnx under its final name.
    write_atomically(write, out, lambda: tensor_bytes(network.state_dict()))
    return names


def check_onnx(model: nn.Module, path: str,
               sizes: Sequence[Tuple[int, int]],
               tolerance: float = DEFAULT_TOLERANCE,
               seed: int = 0, name: Optional[str] = None) -> List[Dict]:
    """The ONNX checker on ``path``, then ONNX Runtime (CPU) against
    PyTorch on a random input at each of ``sizes``. Returns one row per
    size (``size``, ``max_abs``, ``max_rel``: largest |difference| over the
    largest |PyTorch output|); raises :class:`ExportError` when a size is
    above ``tolerance``, naming ``name`` (default: ``path``)."""
    import onnx
    name = name or path
    onnx.checker.check_model(path, full_check=True)
    session = OrtNetwork(path)
    network = ExportNetwork(model).eval()
    rows = []
    gen = torch.Generator().manual_seed(seed)
    print(f'checking ONNX Runtime against PyTorch at {len(sizes)} sizes')
    progress = ProgressBar(len(sizes), file=sys.stderr)  # time left
    for size in sizes:
        x = torch.randn(1, 3, *size, generator=gen)
        with torch.no_grad():
            expected = [t.float().numpy() for t in network(x)]
        got = session(x.numpy())
        max_abs = max_rel = 0.0
        for ref, out in zip(expected, got):
            if ref.shape != out.shape:
                raise ExportError(
                    f'{name}: at {size[0]}x{size[1]} ONNX Runtime gives '
                    f'shape {out.shape}, PyTorch {ref.shape}.')
            diff = float(np.abs(ref - out).max()) if ref.size else 0.0
            scale = float(np.abs(ref).max()) if ref.size else 1.0
            max_abs = max(max_abs, diff)
            max_rel = max(max_rel, diff / max(scale, 1e-12))
        rows.append(dict(size=tuple(size), max_abs=max_abs, max_rel=max_rel))
        progress.update()
        if max_rel > tolerance:
            raise ExportError(
                f'{name}: ONNX Runtime differs from PyTorch at '
                f'{size[0]}x{size[1]} by {max_abs:.3g} ({max_rel:.3g} of '
                f'the output range, tolerance {tolerance:g}).')
    print()  # the progress bar's line ends
    return rows
