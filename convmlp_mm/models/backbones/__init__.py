from convmlp_mm.models.backbones.convmlp import ConvMLP

__all__ = ['ConvMLP']
