"""tools/analysis/benchmark.py: the --quick run produces every table and
JSON field, and the release's formulation it compares against is the same
network (same weights, same outputs to 1e-5, same gradients)."""
import json
from types import SimpleNamespace

import pytest
import torch

from convmlp_mm import ConvMLP
from convmlp_mm.benchmark import formulation, harness, reference

from helpers import load_tool

_cli = load_tool('tools/analysis/benchmark.py')
# One namespace as the tests read it: reference model, harness, and the
# command line (tools/analysis/benchmark.py, run as a subprocess).
benchmark = SimpleNamespace(
    make_reference=reference.make_reference,
    ReleaseConvMLP=reference.ReleaseConvMLP,
    max_relative_difference=reference.max_relative_difference,
    count_forward_copies=harness.count_forward_copies,
    train_fn=harness.train_fn, peak_memory_mib=harness.peak_memory_mib,
    **{name: getattr(_cli, name) for name in ('main', 'parse_args')})


@pytest.mark.parametrize('arch', ['s', 'm'])
def test_release_formulation_matches_default(arch):
    torch.manual_seed(0)
    model = ConvMLP(arch=arch, drop_path_rate=0.0).eval()
    ref = benchmark.make_reference(model).eval()
    assert list(ref.state_dict()) == list(model.state_dict())
    # PyTorch's default layouts, as in the release
    assert all(p.is_contiguous() for p in ref.parameters())
    x = torch.randn(1, 3, 97, 130)
    with torch.no_grad():
        fast, slow = model(x), ref(x)
    assert [o.shape for o in fast] == [o.shape for o in slow]
    assert all(o.is_contiguous() for o in slow)
    assert benchmark.max_relative_difference(fast, slow) <= 1e-5
    # The release's detection forward copies twice: the two Conv-MLP stage
    # outputs it emits, ``x.permute(0, 3, 1, 2).contiguous()``.
    assert benchmark.count_forward_copies(ref, x)['count'] == 2


def test_release_formulation_has_the_same_gradients():
    """A training step of the default (channels-last, MLPs as 1x1
    convolutions, gradients handed back channels-last) and of the release's
    formulation give the same parameter gradients, to float rounding.

    The Conv-MLP stages (LayerNorm, Linear, GELU: smooth) agree to 1e-4.
    In the BatchNorm-ReLU stem a ReLU input within a few 1e-6 of zero can
    take the other side in either layout (measured: one element of 82k),
    which moves the gradients of the layers before it by up to a few
    percent in their largest element; their direction still agrees."""
    torch.manual_seed(0)
    model = ConvMLP(arch='s', drop_path_rate=0.0).train()
    plain = benchmark.make_reference(model, drop_path_rate=0.0).train()
    assert not plain.tokenizer.block[0].weight.is_contiguous(
        memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 80)
    grads = None
    for net in (model, plain):
        outs = net(x)
        if grads is None:
            grads = [torch.randn_like(o) for o in outs]
        torch.autograd.backward(outs, grads)
    for (name, p), q in zip(model.named_parameters(), plain.parameters()):
        if name.startswith('stages.'):
            scale = q.grad.abs().max().clamp_min(1e-12)
            assert float((p.grad - q.grad).abs().max() / scale) < 1e-4, name
        else:
            cosine = torch.nn.functional.cosine_similarity(
                p.grad.flatten(), q.grad.flatten(), dim=0)
            assert cosine > 0.999, name


def test_whole_model_runs_on_the_reference_backbone():
    """RetinaNet trains on the reference backbone with the default's
    weights: both variants are timed and the ratio is theirs."""
    args = SimpleNamespace(model_shape=(64, 64), batch=1)
    settings = harness.Settings(warmup=0, min_runs=1, min_time=0.0,
                                max_runs=1, threads=1)
    rows = formulation.run_whole_model_reference(
        args, torch.device('cpu'), settings, titles=('RetinaNet', ))
    assert [(r['model'], r['size']) for r in rows] == [('RetinaNet',
                                                         '64x64')]
    row = rows[0]
    assert row['default_vs_reference'] == pytest.approx(
        row['reference_s'] / row['default_s'])


def test_release_formulation_refuses_ablations():
    # ConvMLP has no ablation switches (they are PureMLP's); nor does the
    # release's formulation take with_cp.
    with pytest.raises(TypeError, match='"dwconv" is a switch'):
        benchmark.ReleaseConvMLP(arch='s', dwconv=False)
    with pytest.raises(ValueError, match='with_cp'):
        benchmark.ReleaseConvMLP(arch='s', with_cp=True)


def test_peak_memory_sees_activations():
    model = ConvMLP(arch='s', drop_path_rate=0.0).train()
    small = benchmark.train_fn(model, torch.randn(1, 3, 32, 32))
    large = benchmark.train_fn(model, torch.randn(1, 3, 96, 96))
    small()
    cpu = torch.device('cpu')
    reset = lambda: model.zero_grad(set_to_none=True)  # noqa: E731
    mem_small = benchmark.peak_memory_mib(small, cpu, reset)
    mem_large = benchmark.peak_memory_mib(large, cpu, reset)
    # gradients alone are 8.5M floats
    assert mem_small > 8.5e6 * 4 / 2**20
    assert mem_large > mem_small
    # measured afresh each time, not carried over from earlier calls
    assert benchmark.peak_memory_mib(small, cpu, reset) == \
        pytest.approx(mem_small, rel=0.05)


def test_bad_size_is_named():
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--sizes', '224y'])


def test_quick_run_tables_and_json(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    threads = torch.get_num_threads()
    # one thread: two contend badly for a busy CI machine's cores
    result = benchmark.main(['--quick', '--json', str(out), '--runs', '1',
                             '--threads', '1'])
    printed = capsys.readouterr().out
    on_disk = json.loads(out.read_text())
    assert on_disk['quick'] is True
    assert set(on_disk) >= {'environment', 'matmul', 'complexity',
                            'formulation', 'profile',
                            'backbones', 'switches', 'scaling', 'models',
                            'targets'}

    complexity = {r['model']: r for r in on_disk['complexity']}
    assert set(complexity) == {'ConvMLP-S', 'ResNet-50'}
    assert f'{complexity["ConvMLP-S"]["gmacs_224"]:.2f}' == '2.40'
    assert complexity['ConvMLP-S']['params_m'] == pytest.approx(8.509,
                                                                abs=1e-3)

    rows = {(r['model'], r['mode']) for r in on_disk['backbones']}
    assert rows == {(m, mode) for m in ('ConvMLP-S', 'ResNet-50')
                    for mode in ('inference', 'train')}
    for row in on_disk['backbones']:
        assert row['median_ms'] > 0 and row['iqr_ms'] >= 0
        assert row['images_per_s'] == pytest.approx(
            row['batch'] / row['median_ms'] * 1e3)
        assert row['peak_mib'] > 0 and row['gflop_per_s'] > 0

    formulation = {(r['model'], r['size'], r['mode']): r
                   for r in on_disk['formulation']}
    assert set(formulation) == {('ConvMLP-S', '128x128', mode)
                                for mode in ('inference', 'train')}
    for row in formulation.values():
        assert row['default_diff'] <= 1e-5
        assert 0 < row['bf16_diff'] <= 2e-2  # the bound
        assert row['bf16_diff_release_init'] > 0
        assert row['default_vs_reference'] == pytest.approx(
            row['reference_ms'] / row['default_ms'])
        assert row['bf16_vs_default'] == pytest.approx(
            row['default_ms'] / row['bf16_ms'])
    assert any(t['target'].startswith('default fp32 vs reference, ')
               for t in on_disk['targets'])

    profiles = {(r['size'], r['precision']): r for r in on_disk['profile']}
    assert set(profiles) == {('128x128', 'fp32'), ('128x128', 'bf16')}
    for row in profiles.values():
        assert row['step_ms'] > 0 and row['gflop_per_s'] > 0
        shares = [op['pct'] for op in row['ops']] + [row['other_pct']]
        assert sum(shares) == pytest.approx(100)
        assert shares[:-1] == sorted(shares[:-1], reverse=True)
        assert 0 < row['compute_pct'] < 100
        # the bound is the step over its convolution/product share
        assert row['bound_if_rest_free'] == pytest.approx(
            100 / row['compute_pct'])
        assert row['compute_gflop_per_s'] == pytest.approx(
            row['gflop_per_s'] * 100 / row['compute_pct'])

    switches = {r['variant']: r for r in on_disk['switches']}
    plain = switches[reference.REFERENCE]
    default = switches['default (channels-last inside)']
    assert plain['max_rel_diff'] <= 1e-5
    assert default['max_rel_diff'] == 0
    assert switches['default + with_cp']['max_rel_diff'] <= 1e-5
    assert switches['default + bfloat16 autocast']['max_rel_diff'] <= 2e-2
    assert default['forward_copies']['count'] <= 5
    for row in switches.values():
        assert row['train_ms'] > 0 and row['inference_ms'] > 0
        assert row['train_peak_mib'] > 0

    assert {r['mode'] for r in on_disk['scaling']} == {'inference', 'train'}
    assert on_disk['models'] == []  # whole models are not in --quick
    assert any(t['target'].startswith('default fp32 train step vs ref')
               for t in on_disk['targets'])

    for title in ('Parameters and MACs', 'Formulation', 'Profile', 'Backbones',
                  'Switches',
                  'Cost against pixels', 'Targets'):
        assert f'**{title}' in printed
    assert '| ConvMLP-S | 8.51 | 2.40 | 2.40 |' in printed
    assert result['switches'] == on_disk['switches']
    assert result['environment']['threads'] == 1
    assert torch.get_num_threads() == threads  # restored
