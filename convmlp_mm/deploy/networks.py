"""The part of each model that goes into the ONNX graph, as a module with a
flat tuple of tensors out (what an exporter and ONNX Runtime hand over).

What runs where:

- bare backbone: everything (the pyramid levels F1-F4 it emits);
- single-stage detector (RetinaNet): backbone, neck and head up to the raw
  per-level ``cls_scores`` and ``bbox_preds``; anchors, box decoding, NMS
  and rescaling run in ``bbox_head.predict_by_feat`` (mmdet);
- two-stage detector (Mask R-CNN): backbone, neck and RPN head up to the
  FPN levels and the raw RPN outputs; proposals (``rpn_head.predict_by_feat``)
  and the RoI heads (``roi_head.predict``: RoIAlign, box and mask heads, NMS)
  run in PyTorch with mmdet's own code;
- segmentor (Semantic FPN): backbone, neck and decode head up to the logits
  at 1/4 of the input; the resize to the input and to the original image
  runs in ``decode_head.predict_by_feat`` and ``postprocess_result`` (mmseg).
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = ('backbone', 'single_stage', 'two_stage', 'segmentor')


def model_kind(model: nn.Module) -> str:
    """Which of :data:`KINDS` ``model`` is."""
    if hasattr(model, 'decode_head'):
        return 'segmentor'
    if hasattr(model, 'roi_head') and hasattr(model, 'rpn_head'):
        return 'two_stage'
    if hasattr(model, 'bbox_head'):
        return 'single_stage'
    if hasattr(model, 'out_indices'):
        return 'backbone'
    raise TypeError(f'{type(model).__name__} is neither a ConvMLP, a '
                    'single- or two-stage detector nor an encoder-decoder '
                    'segmentor; it cannot be exported.')


class DynamicUpsample(nn.Module):
    """mmseg's ``Upsample`` (``size=None``) with the output size kept
    symbolic. mmseg computes it as ``int(side * scale_factor)``; ``int()``
    of a traced size fixes it at the export size, so at any other size the
    Semantic FPN head's upsampled levels were misaligned (1e-1 off). Sizes
    computed with integer arithmetic stay dynamic; the result is the same
    ``F.interpolate`` call."""

    def __init__(self, scale_factor: int, mode: str, align_corners):
        super().__init__()
        self.scale_factor = scale_factor
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = [side * self.scale_factor for side in x.shape[-2:]]
        return F.interpolate(x, size, None, self.mode, self.align_corners)


def make_sizes_dynamic(model: nn.Module) -> int:
    """Replace, in place, every mmseg ``Upsample`` with an integer scale
    factor and no fixed size by :class:`DynamicUpsample` (same outputs).
    Returns how many were replaced."""
    try:
        from mmseg.models.utils import Upsample
    except ImportError:
        return 0
    count = 0
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, Upsample) and not child.size and \
                    float(child.scale_factor).is_integer():
                setattr(module, name, DynamicUpsample(
                    int(child.scale_factor), child.mode,
                    child.align_corners))
                count += 1
    return count


class ExportNetwork(nn.Module):
    """``model``'s network part (see the module docstring) with a flat tuple
    out; :meth:`output_names` names its outputs. Replaces mmseg's
    ``Upsample`` layers in ``model`` (see :func:`make_sizes_dynamic`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.kind = model_kind(model)
        make_sizes_dynamic(model)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if self.kind == 'backbone':
            return tuple(self.model(x))
        feats = self.model.extract_feat(x)
        if self.kind == 'single_stage':
            cls_scores, bbox_preds = self.model.bbox_head(feats)[:2]
            return tuple(cls_scores) + tuple(bbox_preds)
        if self.kind == 'two_stage':
            cls_scores, bbox_preds = self.model.rpn_head(feats)
            return tuple(feats) + tuple(cls_scores) + tuple(bbox_preds)
        return (self.model.decode_head(feats), )

    def output_names(self) -> List[str]:
        """``cls_score_0``..., ``bbox_pred_0``..., ``feat_0``...,
        ``seg_logits``, in the order :meth:`forward` returns them."""
        if self.kind == 'segmentor':
            return ['seg_logits']
        if self.kind == 'backbone':
            return [f'feat_{i}' for i in range(len(self.model.out_indices))]
        head = self.model.bbox_head if self.kind == 'single_stage' else \
            self.model.rpn_head
        levels = head.prior_generator.num_levels
        names = [f'cls_score_{i}' for i in range(levels)] + \
            [f'bbox_pred_{i}' for i in range(levels)]
        if self.kind == 'two_stage':
            names = [f'feat_{i}' for i in range(levels)] + names
        return names


def split_outputs(kind: str, outputs: List) -> dict:
    """The flat outputs of :class:`ExportNetwork` (or of the ONNX graph)
    grouped again: ``feats``, ``cls_scores``, ``bbox_preds``, ``seg_logits``
    as they apply to ``kind``."""
    outputs = list(outputs)
    if kind == 'backbone':
        return dict(feats=outputs)
    if kind == 'segmentor':
        return dict(seg_logits=outputs[0])
    if kind == 'two_stage':
        levels = len(outputs) // 3
        return dict(feats=outputs[:levels],
                    cls_scores=outputs[levels:2 * levels],
                    bbox_preds=outputs[2 * levels:])
    levels = len(outputs) // 2
    return dict(cls_scores=outputs[:levels], bbox_preds=outputs[levels:])
