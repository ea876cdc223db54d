"""Official checkpoints load strictly and safely; bad ones fail loudly."""
import os
from collections import OrderedDict

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader

from convmlp_mm import ConvMLP
from convmlp_mm.checkpoint import extract_state_dict
from convmlp_mm.checkpoint.safe_loading import (
    _load_from_http,
    _load_from_local,
)
from convmlp_mm.errors import CheckpointError, CheckpointMismatchError
from convmlp_mm.models import convert_official_keys, guess_arch

from helpers import load_tool, make_official_state_dict, official_layout


def pretrained(path, **kwargs):
    model = ConvMLP(init_cfg=dict(type='Pretrained', checkpoint=path),
                    **kwargs)
    model.init_weights()
    return model


def assert_loaded(model, state):
    loaded = model.state_dict()
    backbone_keys = [k for k in state if not k.startswith(('norm.', 'head.'))]
    assert sorted(backbone_keys) == sorted(loaded)
    for key in backbone_keys:
        torch.testing.assert_close(loaded[key], state[key], msg=key)


@pytest.mark.parametrize('arch', ['s', 'm', 'l'])
def test_official_layout_loads_every_tensor(official_checkpoint, arch):
    path, state = official_checkpoint(arch)
    assert len(state) == {'s': 184, 'm': 262, 'l': 307}[arch]
    assert_loaded(pretrained(path, arch=arch), state)


@pytest.mark.parametrize('wrap,prefix', [('state_dict', ''), ('model', ''),
                                         (None, 'module.'),
                                         ('state_dict', 'backbone.'),
                                         ('state_dict', 'module.backbone.')])
def test_wrapped_and_prefixed(official_checkpoint, wrap, prefix):
    path, state = official_checkpoint('s', wrap=wrap, prefix=prefix)
    assert_loaded(pretrained(path), state)


def test_classifier_drop_is_logged(official_checkpoint, capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('convmlp_test_log', log_level='INFO')
    path, _ = official_checkpoint('s')
    pretrained(path)
    out = capsys.readouterr()
    text = out.out + out.err
    assert 'loaded 180 backbone tensors' in text
    assert "dropped the ImageNet classifier's 4 tensors" in text


def test_detector_checkpoint_keeps_backbone_only(tmp_path):
    state = make_official_state_dict('s')
    detector = OrderedDict(('backbone.' + k, v) for k, v in state.items()
                           if not k.startswith(('norm.', 'head.')))
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 128, 1, 1)
    path = tmp_path / 'retinanet.pth'
    torch.save({'meta': {}, 'state_dict': detector}, path)
    assert_loaded(pretrained(str(path)), state)


def test_other_size_names_the_size(official_checkpoint):
    path, _ = official_checkpoint('l')
    with pytest.raises(CheckpointMismatchError) as err:
        pretrained(path, arch='s')
    message = str(err.value)
    assert 'does not fit this ConvMLP backbone' in message
    assert 'have another shape' in message and 'have no place' in message
    assert 'looks like ConvMLP-L' in message and 'arch="l"' in message
    assert '\n' not in message
    path, _ = official_checkpoint('m')
    with pytest.raises(CheckpointMismatchError, match='looks like ConvMLP-M'):
        pretrained(path, arch='s')


def test_missing_keys_listed(tmp_path):
    state = make_official_state_dict('s')
    del state['stages.1.blocks.2.connect.weight']
    del state['tokenizer.block.0.weight']
    path = tmp_path / 'missing.pth'
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError,
                       match=r'2 of the model\'s 180 tensors are missing '
                       r'\(tokenizer.block.0.weight, '
                       r'stages.1.blocks.2.connect.weight\)'):
        pretrained(str(path))


def test_wrong_shapes_listed(tmp_path):
    state = make_official_state_dict('s')
    state['stages.0.blocks.0.norm1.weight'] = torch.ones(64)
    path = tmp_path / 'shape.pth'
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError,
                       match=r'stages.0.blocks.0.norm1.weight: checkpoint '
                       r'\(64,\) vs model \(128,\)'):
        pretrained(str(path))


def test_unexpected_keys_listed(tmp_path):
    state = make_official_state_dict('s')
    state['stages.3.blocks.0.norm1.weight'] = torch.ones(8)
    path = tmp_path / 'extra.pth'
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError,
                       match=r'1 tensor has no place in the model '
                       r'\(stages.3'):
        pretrained(str(path))


def test_not_a_state_dict(tmp_path):
    path = tmp_path / 'list.pth'
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointMismatchError, match='not a state dict'):
        pretrained(str(path))


class _RunsCode:
    def __reduce__(self):
        return (os.system, ('touch should_not_exist',))


def test_hostile_pickle_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'x': torch.zeros(1)}, 'payload': _RunsCode()},
               path)
    with pytest.raises(CheckpointError, match=r'Refusing to load checkpoint'):
        pretrained(str(path))
    assert not (tmp_path / 'should_not_exist').exists()


def test_truncated_file_names_the_file(official_checkpoint, tmp_path):
    path, _ = official_checkpoint('s')
    data = open(path, 'rb').read()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError,
                       match=f'Could not read checkpoint "{cut}"'):
        pretrained(str(cut))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        pretrained(str(tmp_path / 'nope.pth'))


def test_http_scheme_is_the_safe_one():
    # mmengine's own http loader unpickles with weights_only=False: http(s)
    # and local paths are our own loaders, registered with the public
    # register_scheme.
    loader = CheckpointLoader._get_checkpoint_loader(
        'https://example.com/x.pth')
    assert loader is _load_from_http
    assert CheckpointLoader._get_checkpoint_loader('/x.pth') is \
        _load_from_local


def test_unreachable_url_explains_offline_fix(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(CheckpointError,
                       match='model.backbone.init_cfg.checkpoint=/path/to/'
                       'convmlp_s_imagenet.pth'):
        pretrained('http://127.0.0.1:9/convmlp_s_imagenet.pth')


def test_pure_key_conversion():
    state = OrderedDict([('module.backbone.tokenizer.block.0.weight',
                          torch.zeros(1)),
                         ('module.backbone.head.weight', torch.zeros(1)),
                         ('module.neck.x', torch.zeros(1))])
    converted, dropped = convert_official_keys(state)
    assert list(converted) == ['tokenizer.block.0.weight']
    assert dropped == {'classifier': ['head.weight'],
                       'outside prefix': ['neck.x']}
    assert extract_state_dict({'state_dict': {'model': state}}) == state
    assert guess_arch(make_official_state_dict('m')) == 'm'
    assert guess_arch({'x': torch.zeros(1)}) is None


@pytest.mark.parametrize('add_prefix', [False, True])
def test_converter_tool(official_checkpoint, tmp_path, capsys, add_prefix):
    """tools/model_converters/convmlp2mmdet.py's ``main`` in process (it
    builds a bare ConvMLP, no runner)."""
    converter = load_tool('tools/model_converters/convmlp2mmdet.py')
    path, state = official_checkpoint('s', wrap='model')
    out = tmp_path / 'converted' / 'convmlp_s_backbone.pth'
    argv = [path, str(out)] + (['--add-prefix'] if add_prefix else [])
    assert converter.main(argv) == 0
    assert '180 tensors' in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)['state_dict']
    prefix = 'backbone.' if add_prefix else ''
    assert len(saved) == 180
    assert all(k.startswith(prefix) for k in saved)
    assert_loaded(pretrained(str(out)), state)
    # A wrong size is caught by the converter too, and nothing is written;
    # the one error line names the file.
    bad_out = tmp_path / 'bad.pth'
    with pytest.raises(SystemExit) as info:
        converter.main([path, str(bad_out), '--arch', 'l'])
    line = str(info.value.code)
    assert line.startswith(f'error: Checkpoint "{path}" does not fit '
                           'ConvMLP-L') and '\n' not in line, line
    assert 'looks like ConvMLP-S' in line
    assert not bad_out.exists()


def test_layout_fixture_matches_reference():
    assert official_layout('s')[0] == ['tokenizer.block.0.weight',
                                       [32, 3, 3, 3]]
