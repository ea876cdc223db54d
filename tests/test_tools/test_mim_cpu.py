"""docs/train_test.md's ``mim train`` / ``mim test`` on CPU (``--gpus 0``),
run exactly as the page writes them, from a folder laid out as the checkout
(``configs/`` and ``tools/`` linked), with the environment's ``mim``."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from helpers import REPO

DOC = osp.join(REPO, 'docs', 'train_test.md')
MARKER = 'On CPU, mim needs'


def cpu_commands():
    """The commands of the first bash block after MARKER, continuation
    lines joined."""
    with open(DOC) as f:
        text = f.read()
    after = text[text.index(MARKER):]
    block = re.search(r'```bash\n(.*?)```', after, re.S).group(1)
    return [c.strip() for c in block.replace('\\\n', ' ').splitlines()
            if c.strip()]


def test_the_cpu_block_is_the_one_with_gpus_0():
    commands = cpu_commands()
    assert [c.split()[:2] for c in commands] == [
        ['python', 'tools/make_dataset.py'], ['mim', 'train'],
        ['mim', 'test']]
    assert all('--gpus 0' in c for c in commands[1:])


@pytest.mark.e2e
def test_mim_train_and_test_on_cpu_as_the_docs_write_them(tmp_path):
    for name in ('configs', 'tools'):
        os.symlink(osp.join(REPO, name), tmp_path / name)
    bin_dir = osp.dirname(sys.executable)
    assert osp.exists(osp.join(bin_dir, 'mim')), 'run make install'
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ['PATH'])
    outputs = []
    for command in cpu_commands():
        proc = subprocess.run(command, shell=True, cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              timeout=900)
        assert proc.returncode == 0, f'{command}\n{proc.stdout[-3000:]}'
        outputs.append(proc.stdout)
    assert (tmp_path / 'work_dirs' / 'mim_cpu' / 'iter_2.pth').is_file()
    assert 'Training finished successfully' in outputs[1]
    assert re.search(r'mIoU: [\d.]+', outputs[2]), outputs[2][-3000:]
