"""``make demo DEMO_ARGS='--with-cascade --with-upernet'``: the demo's
Cascade Mask R-CNN and UperNet jobs and their configs."""
import json
import os.path as osp

import pytest
from mmengine.config import Config
from tool_artifacts import demo_upernet, read  # noqa: F401

from helpers import REPO, load_tool


def test_flags_and_demo_configs():
    demo = load_tool('tools/demo.py')
    args = demo.parse_args(['--with-cascade', '--with-upernet'])
    assert args.with_cascade and args.with_upernet
    cascade = Config.fromfile(osp.join(REPO, demo.JOBS['cascade'].config))
    # Each of the three stages and the mask head predict the 3 shapes.
    assert [h.num_classes for h in cascade.model.roi_head.bbox_head] == [
        3, 3, 3]
    assert [h.bbox_coder.target_stds[0]
            for h in cascade.model.roi_head.bbox_head] == [0.1, 0.05, 0.033]
    assert cascade.model.roi_head.mask_head.num_classes == 3
    assert cascade.train_dataloader.dataset.type == 'CocoDataset'
    upernet = Config.fromfile(osp.join(REPO, demo.JOBS['upernet'].config))
    assert 'neck' not in upernet.model
    assert upernet.model.decode_head.type == 'UPerHead'
    assert upernet.model.decode_head.num_classes == 4
    assert upernet.model.auxiliary_head.num_classes == 4
    assert upernet.metainfo.classes[0] == 'background'


@pytest.mark.e2e
@pytest.mark.xdist_group('demo_upernet')
def test_smoke_demo_trains_and_draws_upernet(demo_upernet):  # noqa: F811
    """The shared ``--smoke --only upernet`` run (tests/tool_artifacts.py;
    test_stronger_heads.py reads its training log)."""
    out = read(demo_upernet['stdout'])
    assert '| upernet_mIoU' in out
    with open(osp.join(demo_upernet['work_dir'], 'results.json')) as f:
        results = json.load(f)
    assert set(results['models']) == {'upernet'}
    assert set(results['models']['upernet']['metrics']) == {
        'upernet_mIoU', 'upernet_mAcc'}
    names = sorted(osp.basename(p) for p in results['pictures'])
    assert names == ['training_curves.png', 'upernet_val_predictions.png']
