"""docs/own_data.md, then docs/deployment.md, run from the pages' own code
blocks, top to bottom, in one scratch folder that sees the repository's
tools/ and configs/: a small dataset made by the docs' command, the
small-data schedule from scratch, from another model's backbone and from
(official-layout) ImageNet weights, curves, the test with --tta and
--show-dir, publish, export, int8, ONNX Runtime inference; deployment.md's
blocks on the files that walk made.

What the test changes, as own_data.md says: tiny data and two training steps
appended (:data:`APPENDED`), the ``wget`` replaced by a file with the
official keys and shapes, ``make demo``'s checkpoint stood in for by the
walk's first training. Two steps cannot reach a useful mAP, so the metrics
are asserted present, not above a floor (docs/own_data.md gives the
measured numbers of the real schedule)."""
import contextlib
import glob
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys

import onnx
import pytest
import torch
from tool_runner import run_tool

from helpers import REPO, make_official_state_dict
from tools_run import tool_env

# One worker runs the walk once (a session fixture is never torn down
# between its tests, where a module one would be rebuilt whenever the
# worker ran another module's test in between).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group('own_data_walk')]

PAGES = [os.path.join(REPO, 'docs', name)
         for name in ('own_data.md', 'deployment.md')]
# Appended to a command naming the key: tiny data, two steps (RetinaNet's
# scores stay under its 0.05 floor after two steps, and an empty result
# logs no bbox_mAP: every score kept), fewer int8 calibration and parity
# images.
APPENDED = {
    'tools/make_dataset.py': ['--num-train', '4', '--num-val', '2',
                              '--image-size', '64', '64'],
    'retinanet_convmlp_s_fpn_small_data.py --data-root': [
        '--cfg-options', 'train_cfg.max_iters=2',
        'model.test_cfg.score_thr=0'],
    'fpn_convmlp_s_small_data.py --data-root': [
        '--cfg-options', 'train_cfg.max_iters=2'],
    'tools/test.py configs/demo/retinanet_convmlp_s_fpn_small_data.py': [
        '--cfg-options', 'model.test_cfg.score_thr=0'],
    'tools/deploy/quantize_int8.py': ['--calibration-images', '2',
                                      '--parity-images', '2'],
}
# Not run here, as deployment.md says: the benchmark (minutes at full
# size); the bare backbone's export (20 s; tests/test_deploy/test_export.py
# runs it at --shape 64 96).
NOT_RUN = ('tools/deploy/benchmark_onnx.py', 'export_onnx.py s none')
# make demo's checkpoint -> the walk's run that stands in for it.
STAND_INS = {'work_dirs/demo/retinanet/epoch_12.pth': 'work_dirs/my_retinanet'}
DET_CONFIG = ('work_dirs/my_retinanet_from_demo/'
              'retinanet_convmlp_s_fpn_small_data.py')


def page_blocks(page: str):
    """``('bash', command)`` for each command of the page's bash blocks
    (continuation lines joined) and ``('python', code)`` for each python
    block, in page order."""
    with open(page, encoding='utf-8') as f:
        text = f.read()
    blocks = []
    for kind, body in re.findall(r'```(bash|python)\n(.*?)```', text, re.S):
        if kind == 'python':
            blocks.append(('python', body))
            continue
        for command in body.replace('\\\n', ' ').splitlines():
            command = ' '.join(command.split())
            if command and not command.startswith('#'):
                blocks.append(('bash', command))
    return blocks


def appended(command: str) -> list:
    return [arg for key, args in APPENDED.items() if key in command
            for arg in args]


def run_command(command: str, workdir, env) -> subprocess.CompletedProcess:
    """``python tools/X.py ...`` as a fork of the preloaded tool server
    (bash expands the words: ``$(cat ...)``, globs); anything else in
    bash."""
    extra = ''.join(' ' + shlex.quote(a) for a in appended(command))
    if command.startswith('python tools/'):
        words = subprocess.run(
            ['bash', '-c', "printf '%s\\0' " + command[len('python '):] +
             extra], cwd=workdir, env=env, stdout=subprocess.PIPE,
            text=True, timeout=60, check=True).stdout.split('\0')[:-1]
        script = os.path.join(REPO, words[0])
        return run_tool([sys.executable, script, *words[1:]], str(workdir),
                        env, timeout=600)
    return subprocess.run(['bash', '-c', command + extra], cwd=workdir,
                          env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=600)


def stand_in(command: str, workdir) -> None:
    for path, run in STAND_INS.items():
        if path in command and not os.path.exists(workdir / path):
            with open(workdir / run / 'last_checkpoint') as f:
                checkpoint = f.read().strip()
            os.makedirs(os.path.dirname(workdir / path), exist_ok=True)
            os.symlink(checkpoint, workdir / path)


@pytest.fixture(scope='session')
def walk(tmp_path_factory):
    """Every block of both pages in order. Returns the folder, the
    commands' outputs by command and the python blocks' namespaces."""
    workdir = tmp_path_factory.mktemp('own_data')
    for name in ('tools', 'configs'):
        os.symlink(os.path.join(REPO, name), workdir / name)
    env = tool_env(workdir)
    env['PYTHONPATH'] = REPO
    outputs, namespaces, skipped = {}, [], []
    for page in PAGES:
        for kind, block in page_blocks(page):
            if kind == 'python':
                namespace = {}
                printed = io.StringIO()
                here = os.getcwd()
                os.chdir(workdir)
                try:
                    with contextlib.redirect_stdout(printed):
                        exec(compile(block, page, 'exec'), namespace)
                finally:
                    os.chdir(here)
                namespace['printed'] = printed.getvalue()
                namespaces.append(namespace)
                continue
            if any(tool in block for tool in NOT_RUN):
                skipped.append(block)
                continue
            if block in outputs:  # shown by both pages: run once
                continue
            if block.startswith('wget '):
                # Offline: the official file's keys and shapes.
                url = block.split()[-1]
                torch.save(make_official_state_dict('s'),
                           workdir / 'checkpoints' / os.path.basename(url))
                outputs[block] = None
                continue
            stand_in(block, workdir)
            proc = run_command(block, workdir, env)
            assert proc.returncode == 0, (
                block + '\n' + proc.stdout[-3000:] + proc.stderr[-3000:])
            outputs[block] = proc.stdout + proc.stderr
    return workdir, outputs, namespaces, skipped


def output_of(outputs, *needles, ending: str = '') -> str:
    found = [out for command, out in outputs.items()
             if out is not None and all(n in command for n in needles) and
             command.endswith(ending)]
    assert len(found) == 1, (needles, len(found))
    return found[0]


def test_own_data_page_shows_the_whole_path():
    commands = [b for kind, b in page_blocks(PAGES[0]) if kind == 'bash']
    steps = ['make_dataset.py coco', 'retinanet_convmlp_s_fpn_small_data.py',
             '--backbone-checkpoint work_dirs/demo/',
             '--backbone-checkpoint checkpoints/', 'plot_curves.py',
             'publish_model.py', 'export_onnx.py', 'quantize_int8.py',
             '--backend onnxruntime', 'fpn_convmlp_s_small_data.py']
    for step in steps:
        assert any(step in c for c in commands), step
    tests = [c for c in commands if 'tools/test.py' in c]
    assert any('--tta' in c and '--show-dir' in c for c in tests)
    # In the order a user takes them.
    first = [min(i for i, c in enumerate(commands) if step in c)
             for step in ('make_dataset.py coco', 'tools/train.py',
                          'tools/test.py', 'publish_model.py',
                          'export_onnx.py', 'quantize_int8.py',
                          '--backend onnxruntime')]
    assert first == sorted(first)


def test_detection_trains_from_each_start_and_plots(walk):
    workdir, outputs, _, _ = walk
    for run in ('my_retinanet', 'my_retinanet_from_demo',
                'my_retinanet_imagenet'):
        log = output_of(outputs, 'tools/train.py',
                        ending=f'--work-dir work_dirs/{run}')
        # The two COCO names became the classes.
        assert '--classes auto: 2 classes' in log and 'cat, dog' in log
        scalars = glob.glob(str(workdir / 'work_dirs' / run / '*' /
                                'vis_data' / 'scalars.json'))
        with open(scalars[0]) as f:
            logged = [json.loads(line) for line in f]
        # Validated at the last step of the shortened run: plot_curves has
        # bbox_mAP to draw.
        assert any('coco/bbox_mAP' in entry and entry['step'] == 2
                   for entry in logged)
    # A detector checkpoint's backbone: its other tensors are left out.
    assert 'outside "backbone."' in output_of(
        outputs, 'tools/train.py',
        ending='--work-dir work_dirs/my_retinanet_from_demo')
    curves = output_of(outputs, 'plot_curves.py', 'my_retinanet')
    assert 'of 3 run(s)' in curves
    with open(workdir / 'work_dirs' / 'my_retinanet' / 'curves.png',
              'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_detection_test_with_tta_draws_trustworthy_pictures(walk):
    workdir, outputs, _, _ = walk
    log = output_of(outputs, 'tools/test.py', '--tta')
    assert 'coco/bbox_mAP' in log
    # The run's config, as the Runner wrote it, is the TTA model's.
    with open(workdir / 'work_dirs' / 'my_retinanet_test' /
              'retinanet_convmlp_s_fpn_small_data.py') as f:
        assert "type='DetTTAModel'" in f.read()
    # The threshold is said, and the duplicate-free visualizer drew.
    assert 'Pictures: boxes scored 0.5 or more' in log
    pictures = glob.glob(str(workdir / 'work_dirs' / 'my_retinanet_test' /
                             '*' / 'pictures' / '*'))
    assert len(pictures) == 2  # the two validation images


def test_published_exported_quantized_and_inferred(walk):
    workdir, outputs, _, _ = walk
    published = glob.glob(str(workdir / 'work_dirs' / 'my_retinanet-*.pth'))
    assert len(published) == 1
    with open(published[0], 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert published[0].endswith(f'my_retinanet-{digest[:8]}.pth')
    checkpoint = torch.load(published[0], weights_only=True)
    assert 'optimizer' not in checkpoint
    assert checkpoint['meta']['dataset_meta']['classes'] == ('cat', 'dog')

    export = output_of(outputs, 'export_onnx.py', 'my_retinanet.onnx')
    # Two sizes compared with PyTorch, both within the tolerance.
    ratios = [float(r) for r in re.findall(r'max rel ([0-9.e+-]+)', export)]
    assert len(ratios) == 2 and max(ratios) <= 1e-4, export
    onnx.checker.check_model(onnx.load(str(workdir / 'my_retinanet.onnx')))

    quantize = output_of(outputs, 'quantize_int8.py')
    sizes = re.search(r'int8\.onnx: ([0-9.]+) MB \(fp32 my_retinanet\.onnx: '
                      r'([0-9.]+) MB\)', quantize)
    assert sizes and float(sizes[1]) < float(sizes[2]) / 3, quantize
    # Compared with PyTorch running the published checkpoint.
    parity = re.search(r'int8 vs PyTorch on 2 test images: max rel\. diff of '
                       r'raw outputs ([0-9.e+-]+)', quantize)
    assert parity and float(parity[1]) < 1.0, quantize

    infer = output_of(outputs, 'tools/inference.py', 'my_retinanet_int8')
    assert 'randomly initialized' not in infer
    assert 'by default' not in infer  # no default-classes warning
    with open(workdir / 'work_dirs' / 'my_retinanet_int8' /
              'results.json') as f:
        results = json.load(f)['results']
    assert len(results) == 2
    assert all(set(r['predictions']['label_names']) <= {'cat', 'dog'}
               for r in results)


def test_segmentation_trains_tests_and_plots(walk):
    workdir, outputs, _, _ = walk
    log = output_of(outputs, 'tools/train.py', 'my_semfpn')
    assert '--classes auto: 4 classes' in log
    assert 'mIoU' in output_of(outputs, 'tools/test.py', 'my_semfpn')
    # mmseg's visualizer saves under --show-dir itself (relative to the
    # current folder), in vis_data/vis_image/.
    pictures = glob.glob(str(workdir / 'pictures' / 'vis_data' /
                             'vis_image' / '*.png'))
    assert len(pictures) == 2
    assert os.path.getsize(workdir / 'work_dirs' / 'my_semfpn' /
                           'curves.png') > 0


def test_deployment_page_runs_on_the_walks_files(walk):
    workdir, outputs, namespaces, skipped = walk
    with open(workdir / 'work_dirs' / 'inference_ort' / 'results.json') as f:
        assert len(json.load(f)['results']) == 2
    printed, fused = (n for n in namespaces)
    assert '2 images, 0.5 IoU for the pictures' in printed['printed']
    model = fused['model']
    assert not model.training
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in model.backbone.modules())
    assert len(skipped) == len(NOT_RUN)
    with open(PAGES[1]) as f:
        page = f.read()
    assert 'Not run by the walk' in page
    assert 'tests/test_deploy/test_export.py' in page
