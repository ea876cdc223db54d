"""docs/own_data.md's walk-through, run from the page's own ``bash`` blocks
on tiny data: make the folder, train from (synthetic, official-layout)
ImageNet weights with --classes auto and --backbone-checkpoint, evaluate,
draw the predictions and plot the curves, for detection and segmentation.

Only a smaller schedule is appended to the commands; the download line is
replaced by writing a checkpoint with the official keys and shapes."""
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest
import torch

from helpers import REPO, make_official_state_dict
from tools_run import tool_env

pytestmark = pytest.mark.e2e

DOC = os.path.join(REPO, 'docs', 'own_data.md')
# Appended per command: tiny folders and one short epoch / two iterations.
SMALL_DATA = ['--num-train', '4', '--num-val', '2', '--image-size', '64',
              '64']
SHORT_RUN = {
    'retinanet': ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                  'default_hooks.checkpoint.interval=1',
                  'param_scheduler.0.end=1',
                  'train_dataloader.dataset.pipeline.2.scale=(64,64)',
                  'val_dataloader.dataset.pipeline.1.scale=(64,64)'],
    'fpn': ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2',
            'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
            'param_scheduler.1.end=2',
            'train_dataloader.dataset.pipeline.2.scale=(64,64)',
            'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
            'model.data_preprocessor.size=(64,64)',
            'val_dataloader.dataset.pipeline.1.scale=(64,64)'],
}
# tools/test.py: the test images at their own size.
SMALL_TEST = ['test_dataloader.dataset.pipeline.1.scale=(64,64)']


def doc_commands():
    """The commands of the page's bash blocks, continuation lines joined."""
    with open(DOC, encoding='utf-8') as f:
        blocks = re.findall(r'```bash\n(.*?)```', f.read(), re.S)
    commands = []
    for block in blocks:
        for command in block.replace('\\\n', ' ').splitlines():
            command = ' '.join(command.split())
            if command and not command.startswith('#'):
                commands.append(command)
    return commands


def adapt(command: str, workdir) -> str:
    """The doc's command with the test's interpreter and a small run."""
    if command.startswith('python '):
        command = shlex.quote(sys.executable) + command[len('python'):]
    extra = []
    if 'tools/make_dataset.py' in command:
        extra = SMALL_DATA
    elif 'tools/train.py' in command:
        model = 'retinanet' if 'retinanet' in command else 'fpn'
        extra = ['--cfg-options', *SHORT_RUN[model]]
    elif 'tools/test.py' in command:
        extra = ['--cfg-options', *SMALL_TEST]
    return command + ''.join(' ' + shlex.quote(a) for a in extra)


@pytest.fixture(scope='module')
def walk(tmp_path_factory):
    """Run every command of the page in order, in a scratch folder that
    sees the repository's tools/ and configs/."""
    workdir = tmp_path_factory.mktemp('own_data')
    for name in ('tools', 'configs'):
        os.symlink(os.path.join(REPO, name), workdir / name)
    env = tool_env(workdir)
    env['PYTHONPATH'] = REPO
    results = []
    for command in doc_commands():
        if command.startswith('wget '):
            # Offline: the official file's keys and shapes, random values.
            url = command.split()[-1]
            os.makedirs(workdir / 'checkpoints', exist_ok=True)
            torch.save(make_official_state_dict('s'),
                       workdir / 'checkpoints' / os.path.basename(url))
            continue
        proc = subprocess.run(
            ['bash', '-c', adapt(command, workdir)], cwd=workdir, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            timeout=600)
        results.append((command, proc))
        assert proc.returncode == 0, (
            command + '\n' + proc.stdout[-3000:] + proc.stderr[-3000:])
    return workdir, results


def test_doc_has_both_walk_throughs():
    commands = doc_commands()
    for needed in ('--classes auto', '--backbone-checkpoint',
                   'tools/test.py', 'plot_curves.py', 'classes.txt'):
        assert any(needed in c for c in commands), needed


def test_detection_walk_through_trains_evaluates_and_draws(walk):
    workdir, results = walk
    logs = ''.join(p.stdout + p.stderr for c, p in results
                   if 'my_retinanet' in c)
    # The two COCO names became the classes, and the weights were loaded.
    assert '--classes auto: 2 classes' in logs and 'cat, dog' in logs
    assert 'coco/bbox_mAP' in logs
    pictures = glob.glob(str(workdir / 'work_dirs' / 'my_retinanet_test' /
                             '*' / 'pictures' / '*'))
    assert len(pictures) == 2  # the two validation images
    assert os.path.getsize(workdir / 'work_dirs' / 'my_retinanet' /
                           'curves.png') > 0


def test_segmentation_walk_through_trains_evaluates_and_draws(walk):
    workdir, results = walk
    logs = ''.join(p.stdout + p.stderr for c, p in results
                   if 'my_semfpn' in c)
    assert '--classes auto: 4 classes' in logs
    assert 'mIoU' in logs
    # mmseg's visualizer saves under --show-dir itself (relative to the
    # current folder), in vis_data/vis_image/.
    pictures = glob.glob(str(workdir / 'pictures' / 'vis_data' /
                             'vis_image' / '*.png'))
    assert len(pictures) == 2
    assert os.path.getsize(workdir / 'work_dirs' / 'my_semfpn' /
                           'curves.png') > 0
