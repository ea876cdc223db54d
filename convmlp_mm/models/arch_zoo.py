"""ConvMLP sizes (paper Table 1) and the pyramid they emit."""
import copy
from typing import Dict, Union

# Paper Table 1. ``channels`` is the tokenizer width C1, ``dims`` the widths
# C2, C3, C4 of the conv stage output and the three Conv-MLP stages.
ARCH_ZOO: Dict[str, dict] = {
    's': dict(channels=64, conv_blocks=2, blocks=[2, 4, 2],
              dims=[128, 256, 512], mlp_ratio=2),
    'm': dict(channels=64, conv_blocks=3, blocks=[3, 6, 3],
              dims=[128, 256, 512], mlp_ratio=3),
    'l': dict(channels=96, conv_blocks=3, blocks=[4, 8, 3],
              dims=[192, 384, 768], mlp_ratio=3),
}
ARCH_ALIASES = {'small': 's', 'medium': 'm', 'large': 'l'}
ARCH_KEYS = ('channels', 'conv_blocks', 'blocks', 'dims', 'mlp_ratio')

NUM_LEVELS = 4
# ``frozen_stages`` counts these in order: tokenizer, conv stage, Conv-MLP 1-3.
NUM_STAGES = 5


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and \
        value > 0


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Return the architecture settings for a zoo name, alias or dict."""
    if isinstance(arch, str):
        key = ARCH_ALIASES.get(arch.lower(), arch.lower())
        if key not in ARCH_ZOO:
            choices = ', '.join(list(ARCH_ZOO) + list(ARCH_ALIASES))
            raise ValueError(
                f'ConvMLP arch "{arch}" is not one of {choices}; '
                f'or pass a dict with the keys {", ".join(ARCH_KEYS)}.')
        return copy.deepcopy(ARCH_ZOO[key])
    if isinstance(arch, dict):
        missing = [k for k in ARCH_KEYS if k not in arch]
        unknown = [k for k in arch if k not in ARCH_KEYS]
        if missing or unknown:
            raise ValueError(
                f'ConvMLP arch dict must have exactly the keys '
                f'{", ".join(ARCH_KEYS)}; missing: {missing or "none"}, '
                f'unknown: {unknown or "none"}.')
        if len(arch['blocks']) != 3 or len(arch['dims']) != 3:
            raise ValueError(
                'ConvMLP arch dict needs three Conv-MLP stages: "blocks" and '
                f'"dims" must have 3 entries, got {arch["blocks"]} and '
                f'{arch["dims"]}.')
        bad = [f'{k}={arch[k]!r}' for k in ARCH_KEYS if k != 'mlp_ratio'
               and not all(_positive_int(v) for v in (
                   arch[k] if isinstance(arch[k], (list, tuple))
                   else [arch[k]]))]
        ratio = arch['mlp_ratio']
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) \
                or not ratio > 0:
            bad.append(f'mlp_ratio={ratio!r}')
        if bad:
            raise ValueError(
                f'ConvMLP arch dict: widths and block counts must be positive'
                f' integers and mlp_ratio a positive number; got '
                f'{", ".join(bad)}.')
        return copy.deepcopy(dict(arch))
    raise TypeError(
        f'ConvMLP arch must be a str or a dict, got {type(arch).__name__}.')
