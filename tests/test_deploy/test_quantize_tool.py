"""tools/deploy/quantize_int8.py on the learned Semantic FPN: what it
writes and prints (sizes, parity against fp32), calibration from the
training set or a folder, the op set, and ONNX Runtime inference of the
int8 file with the classes recorded at export and no warnings. (int8 mIoU
against fp32: test_parity.py.)"""
import json
import os.path as osp
import re

import onnx
import pytest

from helpers import REPO
from tools_run import explain, python_tool, run

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group('learned_segmentor')]


@pytest.fixture(scope='session')
def fp32(learned_segmentor, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('quantize')
    out = str(tmp / 'semfpn.onnx')
    proc = run(python_tool('deploy/export_onnx.py',
                           learned_segmentor['config'],
                           learned_segmentor['checkpoint'], out,
                           '--shape', '64', '64'), tmp, timeout=600)
    assert proc.returncode == 0, explain(proc)
    return out


def _meta(path: str) -> dict:
    return {p.key: p.value for p in onnx.load(path).metadata_props}


def _int8_readers(path: str) -> set:
    """The op types that read a dequantized (int8) tensor."""
    graph = onnx.load(path).graph
    dequantized = {n.output[0] for n in graph.node
                   if n.op_type == 'DequantizeLinear'}
    return {n.op_type for n in graph.node if set(n.input) & dequantized}


def test_quantize_from_training_set(fp32, learned_segmentor, tmp_path):
    int8 = str(tmp_path / 'semfpn_int8.onnx')
    proc = run(python_tool('deploy/quantize_int8.py',
                           learned_segmentor['config'], fp32, int8,
                           '--data-root', learned_segmentor['data_root'],
                           '--calibration-images', '8'), tmp_path,
               timeout=600)
    assert proc.returncode == 0, explain(proc)
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == ('calibrating on 8 images of the training set; '
                        'quantizing Conv MatMul Gemm Relu Add MaxPool '
                        'Resize')
    mb = lambda p: f'{osp.getsize(p) / 2**20:.2f} MB'  # noqa: E731
    assert lines[1] == f'wrote {int8}: {mb(int8)} (fp32 {fp32}: {mb(fp32)})'
    assert osp.getsize(int8) < osp.getsize(fp32) / 2
    parity = re.fullmatch(
        r'int8 vs fp32 on 4 test images: max rel\. diff of raw outputs '
        r'(\S+); (\S+)% of pixels labelled the same', lines[2])
    assert parity, lines[2]
    assert 0 < float(parity.group(1)) < 0.5
    assert float(parity.group(2)) >= 99.0
    assert not [line for line in (proc.stdout + proc.stderr).splitlines()
                if 'warn' in line.lower()], explain(proc)
    ops = {node.op_type for node in onnx.load(int8).graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    assert {'Conv', 'Gemm'} <= _int8_readers(int8)
    assert _meta(int8) == _meta(fp32)  # kind, outputs, dataset_meta

    # ONNX Runtime runs it with the classes recorded at export.
    out = tmp_path / 'ort'
    proc = run(python_tool('inference.py', learned_segmentor['config'],
                           int8, osp.join(learned_segmentor['data_root'],
                                          'images', 'validation'),
                           '--backend', 'onnxruntime', '--out-dir',
                           str(out)), tmp_path, timeout=600)
    assert proc.returncode == 0, explain(proc)
    output = proc.stdout + proc.stderr
    assert not [line for line in output.splitlines()
                if 'warn' in line.lower()], output
    assert 'Checkpoint is not loaded' not in output
    assert 'classes by default' not in output
    summary = json.loads((out / 'results.json').read_text())
    recorded = json.loads(_meta(fp32)['convmlp_mm.dataset_meta'])
    assert summary['classes'] == recorded['classes'] == \
        ['background', 'circle', 'square', 'triangle']


def test_quantize_from_folder_with_chosen_ops(fp32, learned_segmentor,
                                              tmp_path):
    int8 = str(tmp_path / 'conv_only.onnx')
    folder = osp.join(learned_segmentor['data_root'], 'images', 'training')
    proc = run(python_tool('deploy/quantize_int8.py',
                           learned_segmentor['config'], fp32, int8,
                           '--calibration-dir', folder,
                           '--calibration-images', '4', '--ops', 'Conv',
                           '--parity-images', '2', '--checkpoint',
                           learned_segmentor['checkpoint'], '--data-root',
                           learned_segmentor['data_root']), tmp_path,
               timeout=600)
    assert proc.returncode == 0, explain(proc)
    assert proc.stdout.splitlines()[0] == (
        f'calibrating on 4 images of {folder}; quantizing Conv')
    # --checkpoint: compared with PyTorch running the trained weights (with
    # random weights there, the label maps would not agree).
    parity = re.search(
        r'int8 vs PyTorch on 2 test images: max rel\. diff of raw outputs '
        r'(\S+); (\S+)% of pixels labelled the same', proc.stdout)
    assert parity, explain(proc)
    assert float(parity.group(2)) >= 99.0
    # The channel MLPs' Gemms stay fp32 (the default quantizes them).
    assert 'Conv' in _int8_readers(int8)
    assert 'Gemm' not in _int8_readers(int8)


def test_default_ops_are_the_packages():
    import importlib.util

    from convmlp_mm.deploy import QUANTIZED_OPS
    spec = importlib.util.spec_from_file_location(
        'quantize_int8', osp.join(REPO, 'tools', 'deploy', 'quantize_int8.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.QUANTIZED_OPS == QUANTIZED_OPS


def test_unknown_op_is_one_error_line(fp32, learned_segmentor, tmp_path):
    proc = run(python_tool('deploy/quantize_int8.py',
                           learned_segmentor['config'], fp32,
                           str(tmp_path / 'x.onnx'), '--ops', 'Gelu'),
               tmp_path, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: --ops Gelu: ONNX Runtime quantizes only '
                           'Add, ArgMax, '), last
