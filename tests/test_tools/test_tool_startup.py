"""Parse first, import later: every tool answers ``--help`` from a fresh
interpreter without importing torch, mmengine or the package (their import
is what took 5-7 s); the constants a tool writes out for its flags are the
package's; ``CfgOptions`` reads ``--cfg-options`` as mmengine's
``DictAction``; and a training's console leaves the config dump to its log
file."""
import argparse
import glob
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import DictAction
from tool_artifacts import read, semfpn_amp  # noqa: F401,F811

from convmlp_mm.analysis import MODES
from convmlp_mm.benchmark import SECTIONS
from convmlp_mm.datasets import DEFAULT_CLASSES
from convmlp_mm.deploy import DEFAULT_TOLERANCE, QUANTIZED_OPS
from convmlp_mm_cli import CfgOptions

from helpers import REPO, load_tool

HEAVY = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg', 'convmlp_mm')


def tools():
    found = glob.glob(osp.join(REPO, 'tools', '*.py')) + glob.glob(
        osp.join(REPO, 'tools', '*', '*.py'))
    return sorted(osp.relpath(p, REPO) for p in found)


def imported_by(tool: str, *args: str):
    """Run ``python -X importtime TOOL ARGS`` as a user would: its exit
    status, stdout and the top-level modules it imported."""
    proc = subprocess.run(
        [sys.executable, '-X', 'importtime', tool, *args], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=120)
    modules = set()
    for line in proc.stderr.splitlines():
        if line.startswith('import time:') and '|' in line:
            modules.add(line.rsplit('|', 1)[1].strip().split('.')[0])
    return proc, modules


@pytest.mark.parametrize('tool', tools())
def test_help_answers_before_torch_loads(tool):
    proc, modules = imported_by(tool, '--help')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith('usage:'), proc.stdout[:500]
    assert modules, 'no -X importtime records: the check would pass blind'
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_a_usage_mistake_answers_before_torch_loads():
    proc, modules = imported_by('tools/train.py', '--no-such-flag')
    assert proc.returncode == 2 and 'usage:' in proc.stderr, proc.stderr
    assert 'torch' not in modules


@pytest.mark.parametrize('tool, name, value', [
    ('tools/make_dataset.py', 'DEFAULT_CLASSES', DEFAULT_CLASSES),
    ('tools/analysis/benchmark.py', 'SECTIONS', SECTIONS),
    ('tools/analysis/visualize_features.py', 'MODES', MODES),
    ('tools/deploy/export_onnx.py', 'DEFAULT_TOLERANCE', DEFAULT_TOLERANCE),
    ('tools/deploy/quantize_int8.py', 'QUANTIZED_OPS', QUANTIZED_OPS),
])
def test_constants_written_out_in_tools_are_the_packages(tool, name, value):
    assert getattr(load_tool(tool), name) == value


def test_cfg_options_read_as_mmengines_dict_action():
    values = ['a=1', 'b=0.5', 'c=True', 'd=None', 'e=[1,2,(3,4)]', 'f=x,y',
              'g.h=text']
    parsed = []
    for action in (CfgOptions, DictAction):
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=action)
        parsed.append(parser.parse_args(['--cfg-options', *values])
                      .cfg_options)
    assert parsed[0] == parsed[1]
    assert parsed[0]['e'] == [1, 2, (3, 4)] and parsed[0]['c'] is True


@pytest.mark.e2e
def test_training_console_has_no_config_dump_and_the_log_has_it(
        semfpn_amp):  # noqa: F811
    console = read(semfpn_amp['stdout']) + read(semfpn_amp['stderr'])
    assert 'Iter(train)' in console, console[-2000:]
    # The dump's first lines (mmengine logs "Config:" then the config).
    assert 'Config:\n' not in console
    assert 'train_pipeline = [' not in console
    logs = glob.glob(osp.join(semfpn_amp['work_dir'], '2*', '2*.log'))
    assert len(logs) == 1, logs
    assert f'Config: not shown here; it is in {logs[0]}' in console
    log = read(logs[0])
    assert 'Config:\n' in log and 'train_pipeline = [' in log
    assert osp.isfile(semfpn_amp['config'])
