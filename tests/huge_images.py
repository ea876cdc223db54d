"""A real image of many pixels in a small file, and a way to run code on it
that cannot take the machine's memory if a pixel limit fails: what the
tests of the limit (docs/reliability.md) share."""
import resource
import struct
import zlib

from tool_runner import _forkserver

__all__ = ['call_with_memory_limit', 'inference_tool_error',
           'write_huge_png']

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + \
        struct.pack('>I', zlib.crc32(kind + data))


def write_huge_png(path, width: int = 20000, height: int = 20000) -> str:
    """A valid black 1-bit greyscale PNG of ``width`` x ``height``: about
    50 KB on disk (zlib, row by row, never the whole image in memory), 1.2
    GB decoded to RGB at 20000x20000."""
    row = b'\x00' * (1 + (width + 7) // 8)  # filter byte, packed bits
    rows = 1000
    compressor = zlib.compressobj(9)
    data = [compressor.compress(row * min(rows, height - start))
            for start in range(0, height, rows)]
    data.append(compressor.flush())
    with open(path, 'wb') as f:
        f.write(PNG_SIGNATURE)
        f.write(_png_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height,
                                                 1, 0, 0, 0, 0)))
        f.write(_png_chunk(b'IDAT', b''.join(data)))
        f.write(_png_chunk(b'IEND', b''))
    return str(path)


def _vm_size() -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmSize:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('no VmSize in /proc/self/status')


def _limited(conn, headroom, function, args):
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_size() + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        conn.send(('returned', function(*args)))
    except BaseException as exc:  # sent back for the test to report
        conn.send(('raised', f'{type(exc).__name__}: {exc}'))


def call_with_memory_limit(function, *args, headroom: int = 2**30,
                           timeout: float = 120):
    """``function(*args)`` in a fork of the preloaded tool server
    (tests/tool_runner.py) whose address space may grow by ``headroom``
    bytes only: ``('returned', value)`` or ``('raised', 'Type: message')``.
    ``function`` must be importable (a module's top level)."""
    context = _forkserver()
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_limited,
                              args=(send, headroom, function, args))
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise TimeoutError(f'{function.__name__} ran past {timeout} s')
        return receive.recv()
    except EOFError:
        return ('raised', f'the process ended with {process.exitcode}')
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()



def inference_tool_error(argv) -> str:
    """``tools/inference.py`` main(argv), in this process: its error line,
    or '' when it ends well."""
    from helpers import load_tool
    try:
        load_tool('tools/inference.py').main(argv)
    except SystemExit as exc:
        return '' if exc.code in (0, None) else str(exc.code)
    return ''
