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
)
from convmlp_mm.deploy.fuse import count_batchnorms, fuse_conv_bn
from convmlp_mm.deploy.networks import (
                     DynamicUpsample,
                     ExportNetwork,
                     make_sizes_dynamic,
                     model_kind,
                     split_outputs,
)
from convmlp_mm.deploy.runtime import (
                     OrtNetwork,
                     attach_onnxruntime,
                     roi_head_path,
                     use_onnxruntime,
)

__all__ = [
    'DEFAULT_TOLERANCE', 'DynamicUpsample', 'ExportError', 'ExportNetwork',
    'OrtNetwork', 'attach_onnxruntime', 'check_onnx', 'count_batchnorms',
    'export_onnx', 'fuse_conv_bn', 'load_full_checkpoint', 'load_model',
    'make_sizes_dynamic', 'model_kind', 'roi_head_path', 'split_outputs',
    'use_onnxruntime'
]
