"""Safe loading, crash-safe writes, the allocator setting, data checks and
config preparation: what the tools and the engine share."""
from .allocator import keep_freed_cpu_memory
from .config import ConfigError, load_config, task_of
from .data_checks import (
                          AnnotationError,
                          check_annotation_files,
                          check_data_paths,
                          set_data_root,
)
from .fileio import (
                          replace_atomically,
                          save_checkpoint_atomically,
                          write_text_atomically,
)
from .launch import build_runner, setup_cpu_distributed
from .misc import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, list_images, parse_shape
from .prepare import prepare_test_config, prepare_train_config
from .safe_loading import (
                          CheckpointError,
                          register_safe_loaders,
                          safe_torch_load,
)

__all__ = [
    'AnnotationError', 'CheckpointError', 'ConfigError', 'IMAGE_EXTENSIONS',
    'VIDEO_EXTENSIONS', 'build_runner', 'check_annotation_files',
    'check_data_paths', 'keep_freed_cpu_memory', 'list_images',
    'load_config', 'parse_shape', 'prepare_test_config',
    'prepare_train_config', 'register_safe_loaders', 'replace_atomically',
    'safe_torch_load', 'save_checkpoint_atomically', 'set_data_root',
    'setup_cpu_distributed', 'task_of', 'write_text_atomically'
]
