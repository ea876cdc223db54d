"""An .onnx that cannot be read or run, and a full disk while one is
written: each one ``error:`` line naming the file and the fix (issue 23,
item 6). The ONNX files are tiny graphs written here with the onnx
package; only the full-disk export traces a (0.1M-parameter) ConvMLP."""
import contextlib
import os
import resource
import signal

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from convmlp_mm.cli import DEBUG_ENV
from convmlp_mm.deploy import OrtNetwork, export_onnx, read_onnx
from convmlp_mm.errors import DiskFullError, OnnxModelError
from convmlp_mm.models import ConvMLP

from helpers import REPO, load_tool

RETINANET_DEMO = os.path.join(
    REPO, 'configs', 'demo', 'retinanet_convmlp_s_fpn_demo_shapes.py')
SEMFPN_DEMO = os.path.join(REPO, 'configs', 'demo',
                           'fpn_convmlp_s_demo_shapes.py')
TINY = dict(channels=16, conv_blocks=1, blocks=[1, 1, 1], dims=[32, 48, 64],
            mlp_ratio=1)


def add_graph(with_metadata=True):
    """``input + w`` as an ONNX model, with the exporter's kind metadata
    (or, for a graph from elsewhere, without)."""
    weight = numpy_helper.from_array(np.ones((1, 3, 1, 1), np.float32), 'w')
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node('Add', ['input', 'w'], ['out'])], 'add',
        [value('input', TensorProto.FLOAT, [1, 3, None, None])],
        [value('out', TensorProto.FLOAT, [1, 3, None, None])], [weight])
    model = helper.make_model(graph,
                              opset_imports=[helper.make_opsetid('', 17)])
    if with_metadata:
        entry = model.metadata_props.add()
        entry.key, entry.value = 'convmlp_mm.kind', 'segmentor'
    return model


def external_weights(model, location):
    """``model`` with its weight stored in the file ``location``."""
    tensor = model.graph.initializer[0]
    tensor.ClearField('raw_data')
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (('location', location), ('offset', '0'),
                       ('length', '12')):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return model


def write_case(tmp_path, case):
    """The .onnx file of ``case`` under ``tmp_path``."""
    path = tmp_path / 'model' / 'model.onnx'
    path.parent.mkdir()
    data = add_graph().SerializeToString()
    if case == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    elif case == 'random bytes':
        path.write_bytes(np.random.RandomState(0).bytes(3000))
    elif case == 'text':
        path.write_text('version https://git-lfs.github.com/spec/v1\n')
    elif case == 'empty':
        path.write_bytes(b'')
    elif case == 'data outside its folder':
        (tmp_path / 'weights.bin').write_bytes(
            np.ones(3, np.float32).tobytes())
        path.write_bytes(external_weights(
            add_graph(), '../weights.bin').SerializeToString())
    elif case == 'data file missing':
        path.write_bytes(external_weights(
            add_graph(), 'weights.bin').SerializeToString())
    return str(path)


# What each error says, beyond the file's name.
EXPECTED = {
    'truncated': 'it is truncated, corrupt or not an ONNX file',
    'random bytes': 'it is truncated, corrupt or not an ONNX file',
    'text': 'it is truncated, corrupt or not an ONNX file',
    'empty': 'it is truncated, corrupt or not an ONNX file',
    'data outside its folder': "keeps weights in a file outside its folder",
    'data file missing': 'keeps weights in a file that is missing',
}


@pytest.mark.parametrize('case', list(EXPECTED))
@pytest.mark.parametrize('reader', ['onnxruntime', 'onnx'])
def test_unreadable_onnx_is_named(tmp_path, case, reader):
    """ONNX Runtime (inference, parity) and the onnx package (quantization)
    read the file: both end in the same kind of error."""
    path = write_case(tmp_path, case)
    with pytest.raises(OnnxModelError) as info:
        OrtNetwork(path) if reader == 'onnxruntime' else read_onnx(path)
    message = str(info.value)
    assert path in message and EXPECTED[case] in message, message
    assert 'export it again with tools/deploy/export_onnx.py' in message
    assert '\n' not in message and '[ONNXRuntimeError]' not in message


def test_the_good_graph_reads(tmp_path):
    """The cases above differ from a readable file only in their damage."""
    path = tmp_path / 'model.onnx'
    path.write_bytes(add_graph().SerializeToString())
    out = OrtNetwork(str(path))(np.zeros((1, 3, 4, 4), np.float32))[0]
    assert float(out.min()) == float(out.max()) == 1.0
    assert read_onnx(str(path)).graph.node[0].op_type == 'Add'


def error_of(tool, argv):
    with pytest.raises(SystemExit) as info:
        load_tool(tool).main(argv)
    line = info.value.code
    assert isinstance(line, str) and line.startswith('error: '), line
    assert '\n' not in line and 'Traceback' not in line, line
    return line


def test_inference_with_a_truncated_onnx(tmp_path, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    path = write_case(tmp_path, 'truncated')
    image = tmp_path / 'image.png'
    import cv2
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    line = error_of('tools/inference.py', [
        SEMFPN_DEMO, path, str(image), '--backend', 'onnxruntime',
        '--out-dir', str(tmp_path / 'out')])
    assert line == (
        f'error: Could not read ONNX model {path}: it is truncated, corrupt '
        'or not an ONNX file (Protobuf parsing failed.). Copy it again, or '
        'export it again with tools/deploy/export_onnx.py.')


def test_inference_with_an_onnx_from_elsewhere(tmp_path, monkeypatch):
    """A valid graph without the exporter's metadata: its outputs are not a
    detector's; before, mmdet's post-processing asserted."""
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    path = tmp_path / 'other.onnx'
    path.write_bytes(add_graph(with_metadata=False).SerializeToString())
    image = tmp_path / 'image.png'
    import cv2
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    line = error_of('tools/inference.py', [
        RETINANET_DEMO, str(path), str(image), '--backend', 'onnxruntime',
        '--out-dir', str(tmp_path / 'out')])
    assert f'{path} is an ONNX model but not one written by ' \
        'tools/deploy/export_onnx.py' in line, line


def test_quantize_a_random_file(tmp_path, monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    path = write_case(tmp_path, 'random bytes')
    out = tmp_path / 'int8.onnx'
    line = error_of('tools/deploy/quantize_int8.py',
                    [SEMFPN_DEMO, path, str(out)])
    assert f'Could not read ONNX model {path}: it is truncated' in line
    assert not out.exists()


@contextlib.contextmanager
def file_size_limit(limit):
    """The kernel refuses (EFBIG) writes past ``limit`` bytes of any file,
    as a full disk refuses them (ENOSPC); SIGXFSZ is ignored so the write
    fails instead of killing the process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.mark.e2e
def test_export_that_does_not_fit_leaves_no_onnx(tmp_path):
    """Before: a truncated .onnx under its final name. The old file is
    kept, nothing else is left."""
    model = ConvMLP(arch=TINY, drop_path_rate=0.0).eval()
    out = tmp_path / 'convmlp.onnx'
    out.write_bytes(b'the previous export')
    with file_size_limit(64 << 10):  # the graph holds 0.36 MB of weights
        with pytest.raises(DiskFullError) as info:
            export_onnx(model, str(out), (64, 64))
    message = str(info.value)
    assert f'Could not write {out}: the file is larger than' in message
    assert 'the unfinished convmlp.onnx.partial was removed' in message
    assert os.listdir(tmp_path) == ['convmlp.onnx']
    assert out.read_bytes() == b'the previous export'


@pytest.mark.e2e
def test_export_that_fails_its_check_leaves_the_previous_file(tmp_path):
    """The parity check runs on the .partial: a graph that differs from
    PyTorch by more than the tolerance (here any difference at all) never
    stands under the output's name."""
    from convmlp_mm.deploy import check_onnx
    from convmlp_mm.errors import ExportError
    model = ConvMLP(arch=TINY, drop_path_rate=0.0).eval()
    out = tmp_path / 'convmlp.onnx'
    out.write_bytes(b'the previous export')

    def exact(partial):
        check_onnx(model, partial, [(64, 64)], tolerance=-1.0,
                   name=str(out))

    with pytest.raises(ExportError) as info:
        export_onnx(model, str(out), (64, 64), check=exact)
    assert str(info.value).startswith(
        f'{out}: ONNX Runtime differs from PyTorch at 64x64')
    assert os.listdir(tmp_path) == ['convmlp.onnx']
    assert out.read_bytes() == b'the previous export'
