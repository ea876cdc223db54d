"""Checkpoint files: loading that never runs code (``weights_only=True`` on
every scheme of mmengine's ``CheckpointLoader``) and crash-safe writes.

Nothing here knows ConvMLP: the key conversions of the official and release
checkpoints live in :mod:`convmlp_mm.models`, which builds on this layer."""
