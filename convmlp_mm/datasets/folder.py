"""The folder of a built-in dataset: built in a staging folder beside it and
renamed into place with its marker file last, reused when intact, rebuilt
when damaged, refused when it holds anything else.

The marker lists every file with its size, so a deleted image or a truncated
JSON is found on the next run. The staging folder carries the generator's
process id: a run killed mid-way (even by SIGKILL, which runs no cleanup)
leaves it behind, and the next run removes every such folder whose process
is gone.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, Dict, List, Tuple

from convmlp_mm.errors import SyntheticDatasetError  # noqa: F401

__all__ = ['MARKER', 'FORMAT_VERSION', 'SyntheticDatasetError',
           'build_folder']

#: Marker file recording what made the folder (kind, arguments, format,
#: files).
MARKER = '.convmlp_synthetic.json'
FORMAT_VERSION = 1


def _more(items: List[str], shown: int = 3) -> str:
    return ', ...' if len(items) > shown else ''


STAGING = '.{name}.partial-{pid}-'
RETIRED = '.{name}.old-{pid}-'


def _manifest(folder: str) -> Dict[str, int]:
    """Every file under ``folder`` but the marker, with its size."""
    files = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = osp.join(dirpath, name)
            rel = osp.relpath(path, folder)
            if rel != MARKER:
                files[rel] = osp.getsize(path)
    return files


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _clean_stale(parent: str, name: str) -> List[str]:
    """Remove the staging and retired folders of generators for ``name``
    that are no longer running (killed mid-way, e.g. SIGKILL)."""
    removed = []
    for entry in os.listdir(parent):
        for pattern in (STAGING, RETIRED):
            prefix = pattern.split('{pid}')[0].format(name=name)
            if not entry.startswith(prefix):
                continue
            pid = entry[len(prefix):].split('-', 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(osp.join(parent, entry), ignore_errors=True)
                removed.append(entry)
    return removed


def _damage(root: str, found: Dict) -> Tuple[List[str], List[str]]:
    """(missing or changed files, files the generator did not write)."""
    expected = found.get('files')
    if not isinstance(expected, dict):
        return ['(no file list in the marker: an older generator)'], []
    present = _manifest(root)
    damaged = [f'{rel} ({"missing" if rel not in present else "changed"})'
               for rel, size in expected.items()
               if present.get(rel) != size]
    extra = sorted(rel for rel in present if rel not in expected)
    return damaged, extra


def _read_marker(root: str) -> Dict:
    try:
        with open(osp.join(root, MARKER)) as f:
            found = json.load(f)
    except (OSError, ValueError) as exc:
        raise SyntheticDatasetError(
            f'{root} has a damaged {MARKER} ({exc}), so what made it is '
            'unknown; delete that folder to rebuild it') from None
    if not isinstance(found, dict):
        raise SyntheticDatasetError(
            f'{root} has a damaged {MARKER}; delete that folder to rebuild '
            'it')
    return found


def build_folder(root: str, kind: str, args: Dict,
           write_into: Callable[[str], Dict]) -> str:
    """Reuse ``root`` if it holds this dataset intact, rebuild it if it is
    this dataset damaged (files missing or changed), else build it
    atomically."""
    root = osp.abspath(osp.expanduser(str(root)))
    marker = {'kind': kind, 'format': FORMAT_VERSION, 'args': args}
    parent, name = osp.dirname(root), osp.basename(root)
    os.makedirs(parent, exist_ok=True)
    for entry in _clean_stale(parent, name):
        print(f'removed {osp.join(parent, entry)}, left by an interrupted '
              'run of the dataset generator')
    rebuild = False
    if osp.exists(root):
        if not osp.isdir(root):
            raise SyntheticDatasetError(
                f'{root} exists and is not a folder; pass another root')
        if osp.isfile(osp.join(root, MARKER)):
            found = _read_marker(root)
            if {k: found.get(k) for k in marker} != marker:
                raise SyntheticDatasetError(
                    f'{root} holds a synthetic dataset made with other '
                    f'arguments ({found.get("kind")}, {found.get("args")}); '
                    'pass another root or delete that folder to rebuild it')
            damaged, extra = _damage(root, found)
            if extra:
                raise SyntheticDatasetError(
                    f'{root} holds files the generator did not write '
                    f'({", ".join(extra[:3])}{_more(extra)}'
                    '); refusing to replace it. Move them out or delete the '
                    'folder')
            if not damaged:
                return root  # the same dataset, intact: reuse it
            # Ours, same arguments: the same bytes come back.
            print(f'{root} is damaged ({", ".join(damaged[:3])}'
                  f'{_more(damaged)}); rebuilding it')
            rebuild = True
        elif os.listdir(root):
            raise SyntheticDatasetError(
                f'{root} is not empty and was not made by this generator '
                f'(no {MARKER}); refusing to write into it. Pass an empty or '
                f'new folder')
    # Named after this process, so that the next run can tell a stale one.
    pid = os.getpid()
    staging = tempfile.mkdtemp(
        prefix=STAGING.format(name=name, pid=pid), dir=parent)
    retired = None
    try:
        marker['summary'] = write_into(staging)
        marker['files'] = _manifest(staging)
        # The marker goes last: its presence means the dataset is complete.
        with open(osp.join(staging, MARKER), 'w') as f:
            json.dump(marker, f, indent=2, sort_keys=True)
        os.chmod(staging, 0o755)  # mkdtemp makes it private
        if rebuild:
            retired = tempfile.mkdtemp(
                prefix=RETIRED.format(name=name, pid=pid), dir=parent)
            os.rename(root, osp.join(retired, name))
        elif osp.isdir(root):
            os.rmdir(root)  # empty, checked above
        os.rename(staging, root)
    finally:
        if osp.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    return root
