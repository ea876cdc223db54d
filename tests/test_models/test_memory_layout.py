"""The backbone's fast paths compute the same thing as the plain ones:
channel MLPs as 1x1 convolutions on CPU, channels-last weights, gradients
handed back channels-last; and the allocator setting the tools apply."""
import os
import platform
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from torch.profiler import ProfilerActivity, profile

from convmlp_mm import ConvMLP
from convmlp_mm.engine import allocator
from convmlp_mm.models.backbones import base
from convmlp_mm.models.layers import ToContiguousNCHW, channel_linear, layout

CL = torch.channels_last


def _ops(fn):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events()}


def test_channel_linear_fp32_is_the_linear_as_a_convolution():
    torch.manual_seed(0)
    fc = nn.Linear(24, 40)
    x = torch.randn(2, 5, 7, 24, requires_grad=True)
    out = channel_linear(fc, x, 'conv1x1')
    assert 'aten::convolution' in _ops(
        lambda: channel_linear(fc, x, 'conv1x1'))
    ref_x = x.detach().clone().requires_grad_()
    ref = fc(ref_x)
    assert out.shape == ref.shape == (2, 5, 7, 40)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, [x, fc.weight, fc.bias], grad)
    want = torch.autograd.grad(ref, [ref_x, fc.weight, fc.bias], grad)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-5)


def test_channel_linear_under_bf16_autocast_is_the_linear():
    fc = nn.Linear(16, 32)
    x = torch.randn(1, 4, 4, 16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = channel_linear(fc, x)
        assert 'aten::convolution' not in _ops(lambda: channel_linear(fc, x))
        ref = fc(x)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, ref)


@pytest.mark.parametrize('vendor, expected', [
    ('AuthenticAMD', 'conv1x1'), ('GenuineIntel', 'linear'), ('', 'linear')])
def test_channel_linear_auto_takes_the_convolution_only_on_amd(
        monkeypatch, vendor, expected):
    """'auto' in fp32 on CPU: the 1x1 convolution where MKL's fp32 GEMM was
    measured at half oneDNN's rate (AMD), F.linear on Intel and elsewhere
    (docs/performance.md)."""
    monkeypatch.setattr(layout, '_cpu_vendor', lambda: vendor)
    layout.blas_is_slow_here.cache_clear()
    try:
        fc = nn.Linear(8, 16)
        x = torch.randn(2, 5, 7, 8)
        conv = 'aten::convolution' in _ops(lambda: channel_linear(fc, x))
        assert conv == (expected == 'conv1x1')
        assert layout.blas_is_slow_here() == (
            vendor == 'AuthenticAMD' and torch.backends.mkl.is_available())
    finally:
        layout.blas_is_slow_here.cache_clear()


def test_cpu_vendor_is_read_from_cpuinfo():
    """The rule above reads the real vendor on Linux x86 machines, from the
    one function that reads /proc/cpuinfo (the benchmark uses it too)."""
    if platform.machine() in ('x86_64', 'AMD64') and \
            os.path.exists('/proc/cpuinfo'):
        assert layout._cpu_vendor()  # e.g. GenuineIntel, AuthenticAMD
        info = layout.cpu_info()
        assert info['vendor_id'] == layout._cpu_vendor()
        assert info['model name'] and info['flags']
    else:
        assert layout._cpu_vendor() == ''


def test_cpuinfo_is_read_in_one_place():
    package = os.path.dirname(os.path.dirname(os.path.abspath(
        layout.__file__)))
    package = os.path.dirname(package)  # convmlp_mm/
    readers = []
    for root, _, files in os.walk(package):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(root, name)
                with open(path) as f:
                    if "'/proc/cpuinfo'" in f.read():
                        readers.append(os.path.relpath(path, package))
    assert readers == [os.path.join('models', 'layers', 'layout.py')]


@pytest.mark.parametrize('vendor, impl, words', [
    ('AuthenticAMD', 'auto', "1x1 convolutions (mlp_impl='auto': "
     "AuthenticAMD CPU with MKL, whose fp32 GEMM ran at half oneDNN's rate"),
    ('GenuineIntel', 'auto', "F.linear (mlp_impl='auto': GenuineIntel CPU "
     "with MKL, whose fp32 GEMM beat oneDNN on the channel MLPs"),
    ('', 'auto', "F.linear (mlp_impl='auto': unknown CPU with MKL; the 1x1 "
     "path is for AMD CPUs with MKL only"),
    ('AuthenticAMD', 'linear', "F.linear (mlp_impl='linear' set "
     "explicitly)"),
])
def test_first_forward_logs_the_path_and_why(monkeypatch, vendor, impl,
                                              words):
    """One line in the run's log, at the first forward only."""
    monkeypatch.setattr(layout, '_cpu_vendor', lambda: vendor)
    monkeypatch.setattr(torch.backends.mkl, 'is_available', lambda: True)
    layout.blas_is_slow_here.cache_clear()
    lines = []
    monkeypatch.setattr(base, 'print_log',
                        lambda msg, logger=None: lines.append(msg))
    monkeypatch.setattr(base, '_LOGGED', set())
    try:
        model = ConvMLP('s', mlp_impl=impl).eval()
        with torch.no_grad():
            model(torch.rand(1, 3, 32, 32))
            model(torch.rand(1, 3, 32, 32))
            # Another model with the same path says nothing new.
            ConvMLP('s', mlp_impl=impl).eval()(torch.rand(1, 3, 32, 32))
    finally:
        layout.blas_is_slow_here.cache_clear()
    assert lines == [f'ConvMLP channel MLPs: {words}; docs/performance.md)'
                     if impl == 'auto' else f'ConvMLP channel MLPs: {words}']


def test_log_names_autocast_and_devices():
    x = torch.rand(1, 4, 4, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert 'CPU autocast is on' in layout.describe_mlp_impl('auto', x)
    assert layout.describe_mlp_impl('auto', x.to(torch.bfloat16)).startswith(
        "channel MLPs: F.linear (mlp_impl='auto': the input is not fp32")
    assert layout.auto_mlp_impl(torch.empty(1, device='meta')) == (
        'linear', 'device')


def test_channel_linear_other_shapes_fall_back_to_linear():
    fc = nn.Linear(8, 8)
    x = torch.randn(3, 10, 8)  # (B, L, C), as PatchMerging's
    assert torch.equal(channel_linear(fc, x), fc(x))


def _conv_weights(model):
    return [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)
            and m.kernel_size != (1, 1)]


def test_conv_weights_stay_channels_last():
    model = ConvMLP('s')
    assert all(w.is_contiguous(memory_format=CL)
               for w in _conv_weights(model))
    model.init_weights()
    # a state dict saved in the default layout (the release's) loads into
    # the channels-last weights without changing their layout
    plain = {k: v.contiguous() for k, v in ConvMLP('s').state_dict().items()}
    model.load_state_dict(plain)
    assert all(w.is_contiguous(memory_format=CL)
               for w in _conv_weights(model))
    assert all(torch.equal(model.state_dict()[k], v)
               for k, v in plain.items())


def test_output_gradients_come_back_channels_last():
    x = torch.randn(2, 8, 5, 6).contiguous(memory_format=CL)
    x.requires_grad_()
    out = ToContiguousNCHW.apply(x)
    assert out.is_contiguous() and torch.equal(out, x)
    grad = torch.randn(2, 8, 5, 6)  # what a neck hands back
    out.backward(grad)
    assert x.grad.is_contiguous(memory_format=CL)
    assert torch.equal(x.grad, grad)


def test_keep_freed_memory_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(allocator, '_applied', None)
    monkeypatch.setenv(allocator.ENV_SWITCH, '0')
    assert allocator.keep_freed_cpu_memory() is False
    monkeypatch.setattr(allocator, '_applied', None)


@pytest.mark.skipif(sys.platform != 'linux', reason='glibc malloc only')
def test_keep_freed_memory_stops_page_faults_in_training_steps():
    """Steady-state training steps reuse the pages of the previous step.
    Without the setting, three ConvMLP-S steps at 128x128 took 10.8k page
    faults (42 MiB of fresh pages) on this project's CPU VMs. A fresh
    interpreter: the setting is process-wide (glibc malloc) and the test
    process's own page faults would count everything else it ran."""
    code = '''
import resource, torch
from convmlp_mm import ConvMLP
from convmlp_mm.engine.allocator import keep_freed_cpu_memory
assert keep_freed_cpu_memory()
torch.set_num_threads(1)
model = ConvMLP('s').train()
x = torch.randn(2, 3, 128, 128)
def step():
    model.zero_grad(set_to_none=True)
    sum(o.mean() for o in model(x)).backward()
step(); step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
'''
    env = dict(os.environ)
    env.pop(allocator.ENV_SWITCH, None)
    out = subprocess.run([sys.executable, '-c', code], env=env, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    assert int(out.split()[-1]) < 2000


def test_channel_linear_impl_forces_a_path():
    """'linear' is F.linear even in fp32 on CPU; 'conv1x1' the convolution
    even under bf16 autocast; both compute fc(x)."""
    fc = torch.nn.Linear(8, 16)
    x = torch.randn(2, 5, 7, 8)
    assert 'aten::convolution' not in _ops(
        lambda: channel_linear(fc, x, 'linear'))
    torch.testing.assert_close(channel_linear(fc, x, 'conv1x1'), fc(x),
                               rtol=1e-5, atol=1e-5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert 'aten::convolution' in _ops(
            lambda: channel_linear(fc, x, 'conv1x1'))
