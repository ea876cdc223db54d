"""Expensive test inputs made once per test run and shared by every test and
every pytest-xdist worker that needs them: the tiny datasets, the trained
models, the launches.

Each artifact is a folder under the run's shared temporary directory, built
by the first worker that asks for it, under a file lock, and marked complete
only when its builder returned; the other worker waits for it and reads it.
Tests only read artifacts: one that needs to change an artifact copies it.
"""
import json
import os
import os.path as osp
import shutil
from typing import Callable

from filelock import FileLock

COMPLETE = '.complete.json'


def shared_root(tmp_path_factory) -> str:
    """The temporary directory shared by every worker of this run (under
    xdist each worker's basetemp is a child of it)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent
    root = osp.join(str(base), 'shared')
    os.makedirs(root, exist_ok=True)
    return root


def shared_artifact(tmp_path_factory, name: str,
                    build: Callable[[str], dict]) -> dict:
    """The artifact ``name``: ``build(folder)`` fills ``folder`` and returns
    a JSON-able dict describing it (paths, metrics), returned here; it runs
    once per test run. A build that fails leaves no complete marker, so the
    next test that asks fails the same way instead of reading half a
    folder."""
    root = shared_root(tmp_path_factory)
    folder = osp.join(root, name)
    marker = osp.join(folder, COMPLETE)
    with FileLock(folder + '.lock'):
        if not osp.isfile(marker):
            if osp.isdir(folder):
                shutil.rmtree(folder)  # what a failed build left
            os.makedirs(folder)
            info = build(folder)
            with open(marker, 'w') as f:
                json.dump(info, f)
    with open(marker) as f:
        return json.load(f)
