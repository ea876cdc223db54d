"""Inference-time BatchNorm folding for the PyTorch path.

Each BatchNorm that directly follows a convolution (the tokenizer's and the
conv stage's conv-BN-ReLU, a Semantic FPN head's ``ConvModule``) becomes
part of that convolution's weight and bias; the BN turns into
``nn.Identity``. This is mmcv's ``fuse_conv_bn``; ONNX Runtime does the
same fusion on its own when it optimises a graph.
"""
import torch.nn as nn
from mmcv.cnn import fuse_conv_bn as _mmcv_fuse_conv_bn


def count_batchnorms(model: nn.Module) -> int:
    """BatchNorm layers left in ``model``."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for m in model.modules())


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold BatchNorm into the preceding convolutions, in place, for
    inference only: puts ``model`` in eval mode (folding uses the running
    statistics) and returns it. Training the result afterwards no longer
    normalises; rebuild or reload the model for that."""
    model.eval()
    return _mmcv_fuse_conv_bn(model)
