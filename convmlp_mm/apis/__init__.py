"""Inference on images, folders and videos with a trained detector or
segmentor (see :mod:`convmlp_mm.apis.inference`)."""
from convmlp_mm.apis.inference import (
                        InferenceInputError,
                        build_inferencer,
                        collect_inputs,
                        draw_iou_threshold,
                        drawn_detections,
                        inference,
)

__all__ = [
    'InferenceInputError', 'build_inferencer', 'collect_inputs',
    'draw_iou_threshold', 'drawn_detections', 'inference'
]
