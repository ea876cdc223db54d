"""A wheel that works: ``pip install .`` (not editable) into a fresh virtual
environment beside this one's torch, mmcv, mmdet and mmseg, then, from a
folder outside the checkout: ``import convmlp_mm`` (every module of the
checkout is in the wheel), every tool's ``--help``, one training iteration
of a demo config (the wheel's copy of it) and ``mim search convmlp_mm``.

The environment is made offline and fast: ``venv --without-pip``, a .pth
file that puts this environment's site-packages after its own (the
dependencies; the wheel's convmlp_mm comes first), and this environment's
pip installing a copy of the checkout (the files git tracks or would track:
building in the checkout would touch its convmlp_mm/.mim and egg-info)
with ``--no-deps --no-build-isolation``."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor

import pytest
from mim_index import assert_paper_models

from helpers import REPO

pytestmark = pytest.mark.e2e

TOOLS = sorted(
    osp.relpath(osp.join(folder, name), REPO)
    for folder, dirs, files in os.walk(osp.join(REPO, 'tools'))
    for name in files if name.endswith('.py') and '__pycache__' not in folder)


def run(cmd, cwd, timeout, env=None, check=True):
    proc = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if check:
        assert proc.returncode == 0, (
            f'{" ".join(map(str, cmd))} exited {proc.returncode}:\n'
            f'{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}')
    return proc


def checkout_files():
    out = run(['git', 'ls-files', '--cached', '--others',
               '--exclude-standard', '-z'], REPO, 60).stdout
    return [f for f in out.split('\0')
            if f and osp.isfile(osp.join(REPO, f))]


def package_modules(root):
    """Dotted names of the modules of the convmlp_mm folder under root."""
    names = set()
    for folder, dirs, files in os.walk(osp.join(root, 'convmlp_mm')):
        dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
        for name in files:
            if name.endswith('.py'):
                rel = osp.relpath(osp.join(folder, name), root)[:-3]
                names.add(rel.replace(os.sep, '.').replace('.__init__', ''))
    return names


@pytest.fixture(scope='module')
def wheel_env(tmp_path_factory):
    """(python of the new environment, a folder outside the checkout)."""
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp / 'src'
    for rel in checkout_files():
        os.makedirs(src / osp.dirname(rel), exist_ok=True)
        shutil.copy2(osp.join(REPO, rel), src / rel)
    venv = tmp / 'venv'
    run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], tmp, 120)
    python = str(venv / 'bin' / 'python')
    site = run([python, '-c', 'import sysconfig; '
                'print(sysconfig.get_paths()["purelib"])'], tmp, 60)
    site = site.stdout.strip()
    with open(osp.join(site, 'outer_environment.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    run([sys.executable, '-m', 'pip', '--python', python, 'install',
         '--no-deps', '--no-build-isolation', '--no-index', '-q',
         '--disable-pip-version-check', str(src)], tmp, 600)
    # The `mim` command as pip writes it for openmim's console script.
    mim = venv / 'bin' / 'mim'
    mim.write_text(f'#!{python}\nimport sys\nfrom mim.cli import cli\n'
                   'sys.exit(cli())\n')
    mim.chmod(0o755)
    outside = tmp / 'elsewhere'
    outside.mkdir()
    return python, str(outside), site


def test_the_wheel_holds_every_module(wheel_env):
    python, outside, site = wheel_env
    probe = run([python, '-c', (
        'import importlib, pkgutil, convmlp_mm\n'
        'print(convmlp_mm.__file__)\n'
        'for m in pkgutil.walk_packages(convmlp_mm.__path__, "convmlp_mm."):'
        '\n    print(m.name)\n'
        '    importlib.import_module(m.name)\n')], outside, 300)
    first, *modules = probe.stdout.split()
    assert first == osp.join(site, 'convmlp_mm', '__init__.py')
    assert set(modules) | {'convmlp_mm'} == package_modules(REPO)
    for name in ('model-index.yml', 'configs/demo'):
        assert osp.exists(osp.join(site, 'convmlp_mm', '.mim', name)), name


def test_every_tool_answers_help(wheel_env):
    python, outside, site = wheel_env

    def help_of(tool):
        return tool, run([python, osp.join(REPO, tool), '--help'], outside,
                         180, check=False)

    with ThreadPoolExecutor(2) as pool:
        for tool, proc in pool.map(help_of, TOOLS):
            assert proc.returncode == 0, (tool, proc.stderr[-3000:])
            assert 'usage:' in proc.stdout, tool


def test_one_iteration_of_a_demo_config(wheel_env):
    python, outside, site = wheel_env
    config = osp.join(site, 'convmlp_mm', '.mim', 'configs', 'demo',
                      'fpn_convmlp_s_demo_shapes.py')
    data = osp.join(outside, 'ade')
    run([python, '-c', 'from convmlp_mm.datasets import make_ade20k_dataset;'
         f' make_ade20k_dataset({data!r}, num_train=4, num_val=2, '
         'image_size=(96, 64))'], outside, 120)
    work = osp.join(outside, 'work')
    loaders = [f'{loader}.{key}' for loader in ('train_dataloader',
                                               'val_dataloader')
               for key in ('num_workers=0', 'persistent_workers=False')]
    run([python, osp.join(REPO, 'tools', 'train.py'), config,
         '--work-dir', work, '--data-root', data, '--cfg-options',
         'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
         'default_hooks.checkpoint.interval=1',
         'train_dataloader.batch_size=2',
         *loaders], outside, 600)
    assert osp.isfile(osp.join(work, 'iter_1.pth'))


def test_mim_search_lists_the_models(wheel_env):
    python, outside, site = wheel_env
    mim = osp.join(osp.dirname(python), 'mim')
    proc = run([mim, 'search', 'convmlp_mm'], outside, 180)
    assert_paper_models(proc.stdout)
