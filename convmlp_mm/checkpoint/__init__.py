"""Checkpoint files: loading that never runs code (``weights_only=True`` on
every scheme of mmengine's ``CheckpointLoader``, :mod:`.safe_loading`),
crash-safe writes (:mod:`.fileio`, one commit for every checkpoint hook) and
the one report of whether a state dict fits a model (:mod:`.fit`).

Nothing here knows ConvMLP: the key conversions of the official and release
checkpoints live in :mod:`convmlp_mm.models`, which builds on this layer."""
from convmlp_mm.checkpoint.fileio import (
    PARTIAL_SUFFIX,
    RUN_AGAIN,
    commit_checkpoint,
    partial_path,
    replace_atomically,
    save_checkpoint_atomically,
    tensor_bytes,
    write_atomically,
    write_failure,
    write_text_atomically,
)
from convmlp_mm.checkpoint.fit import (
    LARGEST_SANE_WEIGHT,
    WRAPPER_KEYS,
    StateDictFit,
    check_finite,
    check_state_dict_fits,
    compare_state_dict,
    examples,
    extract_state_dict,
    non_finite_keys,
    oversized_keys,
)
from convmlp_mm.checkpoint.safe_loading import (
    check_zip_crc,
    register_safe_loaders,
    safe_torch_load,
    weights_only_loads,
)

__all__ = [
    'LARGEST_SANE_WEIGHT', 'PARTIAL_SUFFIX', 'RUN_AGAIN', 'StateDictFit',
    'WRAPPER_KEYS', 'check_finite', 'check_state_dict_fits', 'check_zip_crc',
    'commit_checkpoint', 'compare_state_dict', 'examples',
    'extract_state_dict', 'non_finite_keys', 'oversized_keys',
    'partial_path', 'register_safe_loaders', 'replace_atomically',
    'safe_torch_load', 'save_checkpoint_atomically', 'tensor_bytes',
    'weights_only_loads', 'write_atomically', 'write_failure',
    'write_text_atomically'
]
