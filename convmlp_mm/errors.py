"""Every error type of the project: each names a user mistake (a bad
config, flag, data file, checkpoint or input) and its fix.

:mod:`convmlp_mm.cli` turns any of them into one ``error:`` line; they live
in this leaf module so that every layer can raise them without importing a
layer above it (docs/layout.md).
"""

__all__ = [
    'AnnotationError',
    'CheckpointError',
    'CheckpointMismatchError',
    'ConfigError',
    'DiskFullError',
    'ExportError',
    'InferenceInputError',
    'LegacyCheckpointError',
    'NonFiniteCheckpointError',
    'NonFiniteLossError',
    'NonFiniteMetricError',
    'OnnxModelError',
    'SyntheticDatasetError',
    'WorkDirInUseError',
]


class ConfigError(ValueError):
    """A config, flag or data folder that cannot work; the message says why
    and what to do."""


class AnnotationError(ValueError):
    """An annotation file that is not what its dataset reads."""


class SyntheticDatasetError(ValueError):
    """A dataset folder that cannot be written or reused."""


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read, or is not allowed to be."""


class NonFiniteCheckpointError(CheckpointError):
    """A checkpoint whose weights hold NaN or inf."""


class CheckpointMismatchError(ValueError):
    """A checkpoint whose tensors do not fit the ConvMLP it is loaded into."""


class LegacyCheckpointError(ValueError):
    """A release checkpoint that does not fit the config it is used with."""


class DiskFullError(RuntimeError):
    """A file could not be written for lack of room; nothing was lost."""


class WorkDirInUseError(RuntimeError):
    """Another live process trains in this work dir."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss (or weights)."""


class NonFiniteMetricError(RuntimeError):
    """An evaluator returned a NaN or infinite metric."""


class InferenceInputError(ValueError):
    """An input path that is neither an image, a folder of images nor a
    video, or one that cannot be read."""


class ExportError(RuntimeError):
    """The exported graph is invalid or does not reproduce PyTorch."""


class OnnxModelError(ExportError):
    """An ``.onnx`` file that cannot be read or run: truncated, not ONNX,
    external data out of reach, or not written by the exporter."""
