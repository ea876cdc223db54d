"""The trained models of the run (tests/conftest.py: ``learned_detector``,
``learned_segmentor``, tiny RetinaNet and Semantic FPN that learned the
built-in shapes) exported to ONNX with tools/deploy/export_onnx.py, once per
test run and read only (tests/artifacts.py)."""
import os.path as osp

import pytest
from artifacts import shared_artifact

from tools_run import explain, python_tool, run

# The (H, W) the graphs are traced at: the network input of the learned
# models' images at their configs' test scale (128x96 COCO pictures at
# (128, 96); 64x64 ADE20K-layout pictures at (64, 64)).
RETINANET_TRACE, SEMFPN_TRACE = (96, 128), (64, 64)


def _exported(tmp_path_factory, name, learned, shape):
    def build(folder):
        onnx = osp.join(folder, f'{name}.onnx')
        proc = run(python_tool('deploy/export_onnx.py', learned['config'],
                               learned['checkpoint'], onnx, '--shape',
                               *map(str, shape)), folder, timeout=600)
        assert proc.returncode == 0, explain(proc)
        return dict(onnx=onnx, export_output=proc.stdout)
    info = shared_artifact(tmp_path_factory, f'{name}_onnx', build)
    return dict(learned, **info)


@pytest.fixture(scope='session')
def deployed_detector(tmp_path_factory, learned_detector):
    """``learned_detector``'s keys (config, data_root, checkpoint, metrics)
    and its ONNX graph: onnx, export_output (the tool's stdout)."""
    return _exported(tmp_path_factory, 'retinanet', learned_detector,
                     RETINANET_TRACE)


@pytest.fixture(scope='session')
def deployed_segmentor(tmp_path_factory, learned_segmentor):
    """``learned_segmentor`` and its ONNX graph, as above."""
    return _exported(tmp_path_factory, 'semfpn', learned_segmentor,
                     SEMFPN_TRACE)
