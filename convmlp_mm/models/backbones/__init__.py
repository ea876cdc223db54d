from .convmlp import ConvMLP

__all__ = ['ConvMLP']
