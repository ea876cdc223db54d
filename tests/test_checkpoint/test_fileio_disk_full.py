"""A full disk during a crash-safe write (convmlp_mm/checkpoint/fileio.py): the
.partial file goes, the old file stays, the error says what is needed and
what is free."""
import errno
import io
import os
import shutil

import pytest
import torch

from convmlp_mm.checkpoint.fileio import (
    DiskFullError,
    save_checkpoint_atomically,
    write_text_atomically,
)


def test_checkpoint_write_on_a_full_disk(tmp_path, monkeypatch):
    path = str(tmp_path / 'model.pth')
    old = {'w': torch.zeros(4)}
    save_checkpoint_atomically(old, path)
    new = {'w': torch.ones(1000)}  # 4000 bytes of tensor data
    real_save = torch.save

    def full(obj, f, *args, **kwargs):  # f: the open .partial
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[:100])  # part of it fits, then no room
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f.name)

    monkeypatch.setattr(torch, 'save', full)
    asked = []
    real_usage = shutil.disk_usage

    def disk_usage(folder):  # what the file system says is free there
        asked.append(str(folder))
        return real_usage(folder)._replace(free=3 * 2**30 + 5)

    monkeypatch.setattr(shutil, 'disk_usage', disk_usage)
    with pytest.raises(DiskFullError) as info:
        save_checkpoint_atomically(new, path)
    message = str(info.value)
    assert f'Could not write {path}: the disk is full' in message
    assert f'needs about 3.9 KiB (4000 bytes) in {tmp_path}, which has ' \
        f'3.0 GiB ({3 * 2**30 + 5} bytes) free' in message
    assert asked == [str(tmp_path)]
    assert sorted(os.listdir(tmp_path)) == ['model.pth']
    assert torch.equal(torch.load(path, weights_only=True)['w'], old['w'])

    monkeypatch.undo()  # room again
    save_checkpoint_atomically(new, path)
    assert torch.equal(torch.load(path, weights_only=True)['w'], new['w'])


def test_file_size_limit_is_named(tmp_path, monkeypatch):
    path = str(tmp_path / 'results.json')
    write_text_atomically(path, '{}')
    real_open = open

    def limited(file, mode='r', *args, **kwargs):
        if str(file).endswith('.partial') and 'w' in mode:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr('builtins.open', limited)
    with pytest.raises(DiskFullError, match='ulimit -f'):
        write_text_atomically(path, '{"a": 1}')
    monkeypatch.undo()
    with open(path) as f:
        assert f.read() == '{}'
    assert os.listdir(tmp_path) == ['results.json']
