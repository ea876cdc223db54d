"""The Runner the tools build (mmengine's ``RUNNERS``)."""
from .convmlp_runner import ConvMLPRunner

__all__ = ['ConvMLPRunner']
