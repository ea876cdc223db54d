from convmlp_mm.models.backbones.base import ConvMLPBase
from convmlp_mm.models.backbones.convmlp import ConvMLP
from convmlp_mm.models.backbones.pure_mlp import PureMLP

__all__ = ['ConvMLP', 'ConvMLPBase', 'PureMLP']
