"""mim finds the package and its model index: `mim search convmlp_mm`
lists the paper's nine models with their metrics and `mim list` shows the
package, typed as a user types them (the environment's `mim` command, from
`/`, not `python -m mim` from the checkout).

mim reads ``<site-packages>/convmlp_mm/.mim/model-index.yml``: a wheel
ships it there (setup.py copies the index and configs/ into the package);
``make install`` (editable) links the checkout's package into
site-packages and setup.py links .mim/ to the checkout's index and configs
(tools/setup_env.sh). tests/test_wheel.py checks the wheel's."""
import os.path as osp
import re
import subprocess
import sys

import pytest
from mim_index import assert_paper_models

pytestmark = pytest.mark.e2e

MIM = osp.join(osp.dirname(sys.executable), 'mim')


def mim(*args, command=MIM):
    assert osp.exists(command), \
        f'no mim command beside {sys.executable}: run make install'
    return subprocess.run([command, *args], cwd='/',
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=180)


def test_mim_search_lists_the_nine_models_with_the_papers_metrics():
    proc = mim('search', 'convmlp_mm')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_paper_models(proc.stdout)


def test_mim_list_shows_the_package():
    proc = mim('list')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r'^convmlp-mm\s+\d', proc.stdout, re.M), proc.stdout
