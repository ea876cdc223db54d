"""ConvMLPRunner loads whole-model checkpoints strictly through the tools:
tools/test.py and load_from stop with one error line on a checkpoint that
does not fit or holds non-finite weights; fine-tuning from another number
of classes is the explicit opt-in load_from_skip_mismatched_heads=True."""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from convmlp_mm.errors import (
    CheckpointMismatchError,
    NonFiniteCheckpointError,
)

from helpers import load_tool
from tools_run import explain, python_tool, run
from toy_runner import write_tiny_coco

# The tiny config names its classes for training only.
TEST_CLASSES = ("test_dataloader.dataset.metainfo.classes="
                "['circle','square','triangle']")


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('strict')
    data_root, config = write_tiny_coco(root)
    cfg = Config.fromfile(config)
    init_default_scope('mmdet')
    torch.manual_seed(0)
    cfg.model.bbox_head.num_classes = 5  # the config trains 3
    five = MODELS.build(cfg.model).state_dict()
    cfg.model.bbox_head.num_classes = 3
    three = MODELS.build(cfg.model).state_dict()
    paths = {}
    for name, state in (('five', five), ('three', three)):
        paths[name] = str(root / f'{name}.pth')
        torch.save({'meta': {}, 'state_dict': state}, paths[name])
    three = {k: v.clone() for k, v in three.items()}
    three['bbox_head.retina_reg.weight'].view(-1)[0] = math.nan
    paths['nan'] = str(root / 'nan.pth')
    torch.save({'meta': {}, 'state_dict': three}, paths['nan'])
    return dict(root=root, data_root=data_root, config=config,
                tensors=len(three), **paths)


def error_line(tool, argv):
    """``tools/TOOL.py ARGV`` in this process: the one error line it stops
    with (exit status 1, no traceback: cli.command)."""
    with pytest.raises(SystemExit) as info:
        load_tool(f'tools/{tool}.py').main(argv)
    line = info.value.code
    assert isinstance(line, str) and line.startswith('error: '), line
    assert '\n' not in line and 'Traceback' not in line, line
    return line


def test_test_tool_refuses_checkpoint_of_other_class_count(tiny, tmp_path):
    line = error_line('test', [
        tiny['config'], tiny['five'], '--data-root', tiny['data_root'],
        '--work-dir', str(tmp_path), '--cfg-options', TEST_CLASSES])
    assert line.startswith(f'error: Checkpoint "{tiny["five"]}" does not fit')
    assert '2 tensors have another shape' in line  # retina_cls w, b
    assert 'load_from_skip_mismatched_heads=True' in line


def test_test_tool_refuses_non_finite_weights(tiny, tmp_path):
    line = error_line('test', [
        tiny['config'], tiny['nan'], '--data-root', tiny['data_root'],
        '--work-dir', str(tmp_path), '--cfg-options', TEST_CLASSES])
    assert tiny['nan'] in line
    assert f'1 of {tiny["tensors"]} tensors hold NaN or inf' in line


@pytest.mark.e2e
def test_load_from_of_other_class_count_needs_the_opt_in(tiny, tmp_path):
    args = [tiny['config'], '--data-root', tiny['data_root'],
            '--work-dir', str(tmp_path), '--cfg-options',
            f'load_from={tiny["five"]}', 'train_cfg.max_epochs=1']
    line = error_line('train', args)
    assert 'another number of classes' in line

    proc = run(python_tool('train.py', *args,
                           'load_from_skip_mismatched_heads=True'),
               tmp_path, timeout=600)
    assert proc.returncode == 0, explain(proc)
    assert ('kept the initial values of 2 class-layer tensors' in
            proc.stdout + proc.stderr), explain(proc)
    assert 'bbox_head.retina_cls.weight, bbox_head.retina_cls.bias' in \
        proc.stdout + proc.stderr
    assert (tmp_path / 'epoch_1.pth').is_file()


@pytest.mark.parametrize('which, error', [
    ('five', 'another number of classes'),
    ('nan', 'tensors hold NaN or inf'),
])
def test_inference_loads_strictly(tiny, which, error):
    from convmlp_mm.apis.inference import build_inferencer
    classes = ('circle', 'square', 'triangle')
    with pytest.raises((CheckpointMismatchError, NonFiniteCheckpointError),
                       match=error) as info:
        build_inferencer(tiny['config'], tiny[which], device='cpu',
                         classes=classes)
    assert tiny[which] in str(info.value)
    # The checkpoint that fits loads, and its weights are the model's.
    inferencer = build_inferencer(tiny['config'], tiny['three'],
                                  device='cpu', classes=classes)[0]
    saved = torch.load(tiny['three'], weights_only=True)['state_dict']
    for key, value in inferencer.model.state_dict().items():
        assert torch.equal(value, saved[key]), key
