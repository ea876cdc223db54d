"""Measuring the backbone and the models (docs/performance.md,
docs/deployment.md): the release's formulation, the reference every
speed-up is measured against (:mod:`.reference`); timing, memory and the
machine's rates (:mod:`.harness`); the sections and their report
(:mod:`.sections`, :mod:`.formulation`, :mod:`.profiling`, :mod:`.report`)
and one run of them (:mod:`.run`); resuming's time to the first batch
(:mod:`.resume`); ONNX Runtime against PyTorch on CPU (:mod:`.onnx`) and on
a GPU (:mod:`.gpu`). The scripts ``tools/analysis/benchmark.py``,
``tools/analysis/resume_speed.py``, ``tools/deploy/benchmark_onnx.py`` and
``tools/deploy/gpu_check.py`` parse the command line and call these.
"""
from convmlp_mm.benchmark.gpu import GPU_MODELS, gpu_check, gpu_check_model
from convmlp_mm.benchmark.harness import (
    Settings,
    environment,
    measure,
    measure_interleaved,
    peak_memory_mib,
    table,
)
from convmlp_mm.benchmark.onnx import bench_model, benchmark_onnx
from convmlp_mm.benchmark.reference import (
    REFERENCE,
    ReleaseConvMLP,
    make_reference,
    max_relative_difference,
)
from convmlp_mm.benchmark.resume import resume_speed
from convmlp_mm.benchmark.run import run_benchmark
from convmlp_mm.benchmark.sections import SECTIONS, config_path

__all__ = [
    'GPU_MODELS', 'REFERENCE', 'ReleaseConvMLP', 'SECTIONS', 'Settings',
    'bench_model', 'benchmark_onnx', 'config_path', 'environment',
    'gpu_check', 'gpu_check_model', 'make_reference',
    'max_relative_difference', 'measure', 'measure_interleaved',
    'peak_memory_mib', 'resume_speed', 'run_benchmark', 'table'
]
