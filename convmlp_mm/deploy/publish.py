"""Publishing a trained checkpoint, as mmdet's
``tools/model_converters/publish_model.py``: keep the weights and the
``meta`` (the dataset's classes and palette, the config, the versions),
drop the training state (optimizer, message hub, schedulers, random
states), and name the file after its content's SHA-256."""
import hashlib
import io
import os.path as osp
from typing import Dict, Sequence

import torch

from convmlp_mm.checkpoint import (
    check_finite,
    extract_state_dict,
    safe_torch_load,
    write_atomically,
)
from convmlp_mm.errors import CheckpointError

# What a published file keeps (mmdet's default ``--save-keys``).
PUBLISHED_KEYS = ('meta', 'state_dict')


def published_name(out: str, digest: str) -> str:
    """``work/model.pth`` + digest -> ``work/model-<first 8 hex>.pth``."""
    stem = out[:-4] if out.endswith('.pth') else out
    return f'{stem}-{digest[:8]}.pth'


def publish_checkpoint(in_file: str, out_file: str,
                       keys: Sequence[str] = PUBLISHED_KEYS) -> Dict:
    """Write ``in_file`` without its training state to
    ``<out_file stem>-<sha256[:8]>.pth`` (crash-safe: the file appears
    complete or not at all). The input is read with ``weights_only=True``
    and its weights must be finite. Returns ``path``, ``sha256``,
    ``dropped`` (the keys removed), ``size_in`` and ``size_out`` (bytes)."""
    if not osp.isfile(in_file):
        raise FileNotFoundError(
            f'Checkpoint not found: {in_file} (a .pth saved by '
            'tools/train.py, e.g. work_dirs/<name>/epoch_12.pth)')
    checkpoint = safe_torch_load(in_file, in_file)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise CheckpointError(
            f'{in_file} holds no "state_dict": publish a whole-model '
            'checkpoint saved by tools/train.py.')
    check_finite(extract_state_dict(checkpoint, in_file), in_file)
    kept = {k: v for k, v in checkpoint.items() if k in keys}
    dropped = sorted(k for k in checkpoint if k not in keys)
    buffer = io.BytesIO()
    torch.save(kept, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = published_name(out_file, digest)

    def write(partial: str) -> None:
        with open(partial, 'wb') as f:
            f.write(data)

    write_atomically(write, path, len(data))
    return dict(path=path, sha256=digest, dropped=dropped,
                size_in=osp.getsize(in_file), size_out=len(data))
