"""``tools/test.py --show-dir`` pictures (DuplicateFreeDetLocalVisualizer):
a weaker duplicate of another class is not drawn over the right box, the
threshold is logged, and tools/test.py's config preparation puts the
visualizer in with the config's own NMS IoU."""
import argparse
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from convmlp_mm.config import load_config, prepare_test_config
from convmlp_mm.engine import DuplicateFreeDetLocalVisualizer

from helpers import REPO

META = dict(classes=('circle', 'square'), palette=[(220, 20, 60),
                                                    (0, 0, 230)])
IMAGE = np.full((96, 128, 3), 90, dtype=np.uint8)


def _sample(boxes, scores, labels) -> DetDataSample:
    sample = DetDataSample()
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        scores=torch.tensor(scores, dtype=torch.float32),
        labels=torch.tensor(labels))
    return sample


def _picture(visualizer, sample, score_thr=0.3) -> np.ndarray:
    visualizer.dataset_meta = META
    visualizer.add_datasample('x', IMAGE, sample, draw_gt=False,
                              pred_score_thr=score_thr)
    return visualizer.get_image()


def test_weaker_duplicate_is_not_drawn_over_the_right_box(capsys):
    # The case: a circle scored 0.83 and, on the same object, a
    # square box at 0.376 whose label mmdet draws on top of the right one.
    both = _sample([[20, 20, 60, 60], [21, 20, 60, 61]], [0.83, 0.376],
                   [0, 1])
    only_right = _sample([[20, 20, 60, 60]], [0.83], [0])
    ours = _picture(DuplicateFreeDetLocalVisualizer(
        name='ours', draw_iou_thr=0.5), both)
    # Expected: what mmdet's own visualizer draws for the right box alone.
    expected = _picture(DetLocalVisualizer(name='alone'), only_right)
    upstream = _picture(DetLocalVisualizer(name='upstream'), both)
    assert np.array_equal(ours, expected)
    assert not np.array_equal(upstream, expected)  # the problem is real


def test_threshold_is_logged_once():
    logger = MMLogger.get_instance('test_visualization_log',
                                   log_level='INFO')
    lines = []
    handler = _ListHandler(lines)
    logger.handlers.append(handler)
    try:
        visualizer = DuplicateFreeDetLocalVisualizer(
            name='logged', draw_iou_thr=0.6)
        sample = _sample([[20, 20, 60, 60]], [0.83], [0])
        _picture(visualizer, sample, score_thr=0.5)
        _picture(visualizer, sample, score_thr=0.5)
    finally:
        logger.handlers.remove(handler)
    told = [line for line in lines if line.startswith('Pictures:')]
    assert len(told) == 1
    assert 'scored 0.5 or more' in told[0] and 'IoU > 0.6' in told[0]


class _ListHandler:
    level = 0

    def __init__(self, lines):
        self.lines = lines

    def handle(self, record):
        self.lines.append(record.getMessage())


@pytest.mark.parametrize('flag', ['--show-dir', '--show'])
def test_test_tool_draws_with_it_at_the_configs_nms_iou(flag, tmp_path,
                                                        coco_root,
                                                        monkeypatch):
    # --show is refused without a display (test_documented_flags.py).
    monkeypatch.setenv('DISPLAY', ':0')
    config = osp.join(REPO, 'configs', 'demo',
                      'retinanet_convmlp_s_fpn_demo_shapes.py')
    args = argparse.Namespace(
        config=config, checkpoint='x.pth', work_dir=str(tmp_path),
        data_root=str(coco_root),
        cfg_options={'model.test_cfg.nms.iou_threshold': 0.4},
        launcher='none', task=None, classes=None, classes_subset_ok=False,
        show=flag == '--show', wait_time=0, tta=False, out=None,
        show_dir='pictures' if flag == '--show-dir' else None)
    cfg = prepare_test_config(args)
    assert cfg.visualizer.type == 'DuplicateFreeDetLocalVisualizer'
    assert cfg.visualizer.draw_iou_thr == 0.4
    # Without the flag the config's visualizer is left alone.
    assert load_config(config).visualizer.type == 'DetLocalVisualizer'
