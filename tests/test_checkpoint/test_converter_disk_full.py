"""The model converter when its output does not fit: one error line, no
``.partial`` left (issue 23, item 6). Before, torch's writer raised a raw
``inline_container.cc`` RuntimeError and the ``.partial`` stayed."""
import contextlib
import resource
import signal

import pytest

from convmlp_mm.cli import DEBUG_ENV

from helpers import load_tool


@contextlib.contextmanager
def file_size_limit(limit):
    """The kernel refuses (EFBIG) writes past ``limit`` bytes of any file,
    as a full disk refuses them (ENOSPC), through torch's own writer;
    SIGXFSZ is ignored so the write fails instead of killing the
    process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_converter_output_that_does_not_fit(tmp_path, official_checkpoint,
                                            monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    src, _ = official_checkpoint('s')
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    dst = out_dir / 'convmlp_s_backbone.pth'
    tool = load_tool('tools/model_converters/convmlp2mmdet.py')
    with file_size_limit(1 << 20):  # ConvMLP-S: 32 MiB of tensors
        with pytest.raises(SystemExit) as info:
            tool.main([src, str(dst)])
    line = info.value.code
    assert isinstance(line, str) and '\n' not in line, line
    assert line.startswith(f'error: Could not write {dst}: the file is '
                           'larger than this file system or the process\'s '
                           'file-size limit (ulimit -f) allows'), line
    assert 'the unfinished convmlp_s_backbone.pth.partial was removed' in line
    assert 'then run the same command again.' in line
    assert list(out_dir.iterdir()) == []
