"""tools/model_converters/publish_model.py: the learned detector's
checkpoint without its training state, named after its SHA-256, taken by
every tool that loads a checkpoint (tools/test.py reproduces its mAP,
tools/inference.py, the exporter); and ONNX Runtime inference of the
exported file says only what is true (no warnings, the dataset's classes).
"""
import hashlib
import json
import os.path as osp
import re

import pytest
import torch

from tools_run import CLASSES, explain, python_tool, run

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group('learned_detector')]

UPSTREAM_WARNINGS = ('Checkpoint is not loaded',
                     'randomly initialized model',
                     'classes by default')


@pytest.fixture(scope='module')
def published(learned_detector, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('publish')
    proc = run(python_tool('model_converters/publish_model.py',
                           learned_detector['checkpoint'],
                           str(tmp / 'retinanet_tiny.pth')), tmp,
               timeout=300)
    assert proc.returncode == 0, explain(proc)
    found = re.search(r'published (\S+): ', proc.stdout)
    assert found, proc.stdout
    return dict(path=found.group(1), stdout=proc.stdout, tmp=tmp)


def test_published_file_holds_weights_and_meta(published, learned_detector,
                                               tmp_path):
    path = published['path']
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert osp.basename(path) == f'retinanet_tiny-{digest[:8]}.pth'
    assert not osp.exists(path + '.partial')
    # Loads with weights_only=True: nothing in it can run code.
    checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    assert set(checkpoint) == {'meta', 'state_dict'}
    meta = checkpoint['meta']
    assert tuple(meta['dataset_meta']['classes']) == CLASSES
    assert meta['dataset_meta']['palette']
    assert 'retinanet_tiny' in meta['cfg'] or 'RetinaNet' in meta['cfg']
    assert meta['mmengine_version']
    original = torch.load(learned_detector['checkpoint'], map_location='cpu',
                          weights_only=False)
    assert {'optimizer', 'message_hub', 'param_schedulers'} <= set(original)
    assert checkpoint['state_dict'].keys() == original['state_dict'].keys()
    for key, value in original['state_dict'].items():
        assert torch.equal(checkpoint['state_dict'][key], value), key
    size_in = osp.getsize(learned_detector['checkpoint'])
    size_out = osp.getsize(path)
    assert size_out < size_in / 2
    lines = published['stdout'].splitlines()
    assert lines[0] == ('dropped message_hub, optimizer, param_schedulers, '
                        'random_states')
    assert f'{size_out / 2**20:.1f} MB (was {size_in / 2**20:.1f} MB)' \
        in lines[1]
    # The same checkpoint publishes to the same name.
    again = run(python_tool('model_converters/publish_model.py',
                            learned_detector['checkpoint'],
                            str(tmp_path / 'retinanet_tiny.pth')),
                tmp_path, timeout=300)
    assert again.returncode == 0, explain(again)
    assert osp.basename(path) in again.stdout


def test_publish_missing_input_is_one_error_line(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    proc = run(python_tool('model_converters/publish_model.py', missing,
                           str(tmp_path / 'out.pth')), tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: Checkpoint not found: {missing} (a .pth saved by '
        'tools/train.py, e.g. work_dirs/<name>/epoch_12.pth)')


def test_test_tool_reproduces_the_map(published, learned_detector,
                                      tmp_path):
    proc = run(python_tool('test.py', learned_detector['config'],
                           published['path'], '--data-root',
                           learned_detector['data_root'], '--work-dir',
                           str(tmp_path / 'test')), tmp_path, timeout=600)
    assert proc.returncode == 0, explain(proc)
    found = re.findall(r'coco/bbox_mAP: ([0-9.]+)', proc.stdout +
                       proc.stderr)
    assert found, explain(proc)
    expected = learned_detector['metrics']['coco/bbox_mAP']
    assert float(found[-1]) == pytest.approx(expected, abs=1e-4)


def test_inference_tool_takes_the_published_file(published,
                                                 learned_detector, tmp_path):
    image = osp.join(learned_detector['data_root'], 'val2017',
                     '000000000001.jpg')
    out = tmp_path / 'inference'
    proc = run(python_tool('inference.py', learned_detector['config'],
                           published['path'], image, '--out-dir', str(out)),
               tmp_path, timeout=300)
    assert proc.returncode == 0, explain(proc)
    summary = json.loads((out / 'results.json').read_text())
    assert summary['classes'] == list(CLASSES)


def test_onnxruntime_inference_says_only_what_is_true(
        published, learned_detector, tmp_path):
    onnx = str(tmp_path / 'retinanet.onnx')
    proc = run(python_tool('deploy/export_onnx.py',
                           learned_detector['config'], published['path'],
                           onnx, '--shape', '96', '128'), tmp_path,
               timeout=600)
    assert proc.returncode == 0, explain(proc)
    out = tmp_path / 'ort'
    proc = run(python_tool('inference.py', learned_detector['config'], onnx,
                           osp.join(learned_detector['data_root'],
                                    'val2017'),
                           '--backend', 'onnxruntime', '--out-dir',
                           str(out)), tmp_path, timeout=600)
    assert proc.returncode == 0, explain(proc)
    output = proc.stdout + proc.stderr
    assert not [line for line in output.splitlines()
                if 'warn' in line.lower()], output
    for text in UPSTREAM_WARNINGS:
        assert text not in output, output
    # The classes recorded at export, not COCO's.
    summary = json.loads((out / 'results.json').read_text())
    assert summary['classes'] == list(CLASSES)
    names = {name for entry in summary['results']
             for name in entry['predictions']['label_names']}
    assert names and names <= set(CLASSES)
    assert 'boxes scored >= 0.3' in proc.stdout
