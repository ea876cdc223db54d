"""Deployment: ONNX export (torch's dynamo exporter), ONNX Runtime
inference through mmdet's and mmseg's own post-processing, int8
quantization and BatchNorm folding. See docs/deployment.md."""
from convmlp_mm.deploy.export import (
                     DEFAULT_TOLERANCE,
                     ExportError,
                     check_onnx,
                     export_onnx,
                     load_full_checkpoint,
                     load_model,
                     model_from_config,
)
from convmlp_mm.deploy.fuse import count_batchnorms, fuse_conv_bn
from convmlp_mm.deploy.networks import (
                     DynamicUpsample,
                     ExportNetwork,
                     make_sizes_dynamic,
                     model_kind,
                     split_outputs,
)
from convmlp_mm.deploy.publish import (
                     PUBLISHED_KEYS,
                     publish_checkpoint,
                     published_name,
)
from convmlp_mm.deploy.quantize import (
                     QUANTIZED_OPS,
                     calibration_inputs,
                     check_ops,
                     compare_int8,
                     match_detections,
                     pick_images,
                     quantize_int8,
)
from convmlp_mm.deploy.runtime import (
                     OrtNetwork,
                     attach_onnxruntime,
                     read_onnx,
                     roi_head_path,
                     use_onnxruntime,
)

__all__ = [
    'DEFAULT_TOLERANCE', 'DynamicUpsample', 'ExportError', 'ExportNetwork',
    'OrtNetwork', 'PUBLISHED_KEYS', 'QUANTIZED_OPS', 'attach_onnxruntime',
    'calibration_inputs', 'check_onnx', 'check_ops', 'compare_int8',
    'count_batchnorms', 'export_onnx', 'fuse_conv_bn',
    'load_full_checkpoint', 'load_model', 'make_sizes_dynamic',
    'match_detections', 'model_from_config', 'model_kind', 'pick_images',
    'publish_checkpoint', 'published_name', 'quantize_int8', 'read_onnx',
    'roi_head_path', 'split_outputs', 'use_onnxruntime'
]
