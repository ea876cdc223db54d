"""A checkpoint whose tensor bytes changed after it was written (a bad copy,
download or disk) is refused by the CRC-32 its zip records for each member;
torch.load alone returns the changed numbers (issue 23, item 6)."""
import os
import zipfile

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm.checkpoint import safe_torch_load
from convmlp_mm.errors import CheckpointError


def flip_tensor_byte(src, dst):
    """Copy ``src`` to ``dst`` with one byte of its first tensor's data
    inverted; returns the member's name."""
    data = bytearray(open(src, 'rb').read())
    with zipfile.ZipFile(src) as archive:
        info = next(i for i in archive.infolist()
                    if i.filename.endswith('/data/0'))
    # Stored members: the data follows the 30-byte local header, the name
    # and the local extra field (their lengths at bytes 26 and 28).
    head = info.header_offset
    start = head + 30 + int.from_bytes(data[head + 26:head + 28], 'little') \
        + int.from_bytes(data[head + 28:head + 30], 'little')
    data[start + 5] ^= 0xFF
    open(dst, 'wb').write(data)
    return info.filename


@pytest.fixture
def corrupted(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.arange(64.)}}, good)
    bad = tmp_path / 'bad.pth'
    member = flip_tensor_byte(good, bad)
    # What the file now holds: other numbers, which torch.load returns.
    changed = torch.load(bad, weights_only=True)['state_dict']['w']
    assert not torch.equal(changed, torch.arange(64.))
    return str(bad), member


def test_changed_bytes_are_refused_on_every_route(corrupted):
    path, member = corrupted
    for load in (lambda: safe_torch_load(path, path),
                 lambda: CheckpointLoader.load_checkpoint(path)):
        with pytest.raises(CheckpointError) as info:
            load()
        assert str(info.value) == (
            f'Checkpoint "{path}" is corrupted: the bytes of \'{member}\' '
            'do not match the CRC-32 recorded when it was written (changed '
            'since: a failed copy or download, or a bad disk). Download it '
            'again, or publish it again from the original.')


def test_file_saved_without_crcs_still_loads(tmp_path):
    """torch.save writes CRC 0 when told not to compute them: nothing to
    check, not a corruption."""
    path = str(tmp_path / 'no_crc.pth')
    torch.serialization.set_crc32_options(False)
    try:
        torch.save({'w': torch.ones(3)}, path)
    finally:
        torch.serialization.set_crc32_options(True)
    with zipfile.ZipFile(path) as archive:
        assert {i.CRC for i in archive.infolist()} == {0}
    assert torch.equal(safe_torch_load(path, path)['w'], torch.ones(3))


def test_damaged_cached_download_says_to_delete_it(corrupted, tmp_path,
                                                   monkeypatch):
    """A URL's file is read from torch.hub's cache without the network:
    downloading again needs the cached copy gone."""
    path, member = corrupted
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'model.pth'
    cached.parent.mkdir(parents=True)
    os.replace(path, cached)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    url = 'https://example.invalid/ckpt/model.pth'
    with pytest.raises(CheckpointError) as info:
        CheckpointLoader.load_checkpoint(url)
    assert str(info.value) == (
        f'Checkpoint "{url} (file {cached})" is corrupted: the bytes of '
        f'\'{member}\' do not match the CRC-32 recorded when it was written '
        '(changed since: a failed copy or download, or a bad disk). Delete '
        f'{cached} so that the next run downloads it again.')
