"""What a detection picture shows (convmlp_mm.apis.drawn_detections): on
the learned detector's real predictions, no two drawn boxes overlap by
more than the config's NMS IoU (RetinaNet keeps one box per class for one
object), every box left out is a duplicate of a higher-scored drawn one,
and the best box is drawn last (on top)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.structures import InstanceData

from convmlp_mm.apis import drawn_detections, inference

SCORE_THR = 0.3  # tools/inference.py's default


def _instances(boxes, scores, labels) -> InstanceData:
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                        scores=torch.tensor(scores, dtype=torch.float32),
                        labels=torch.tensor(labels))


def test_weaker_duplicate_of_another_class_is_not_drawn():
    # A circle scored 0.83 and a square box on the same object at 0.376,
    # as in the issue; a separate box at 0.5; one below the threshold.
    inst = _instances([[10, 10, 50, 50], [11, 10, 50, 51], [60, 60, 90, 90],
                       [0, 0, 5, 5]], [0.83, 0.376, 0.5, 0.1], [0, 1, 1, 2])
    assert drawn_detections(inst, SCORE_THR, 0.5).tolist() == [2, 0]
    assert drawn_detections(inst, 0.0, 0.5).tolist() == [3, 2, 0]
    assert drawn_detections(inst, 0.9, 0.5).tolist() == []


@pytest.mark.e2e
@pytest.mark.xdist_group('learned_detector')
def test_drawn_boxes_on_real_predictions(learned_detector, tmp_path):
    out = tmp_path / 'inference'
    summary = inference(learned_detector['config'],
                        learned_detector['checkpoint'],
                        osp.join(learned_detector['data_root'], 'val2017'),
                        str(out), device='cpu', score_thr=SCORE_THR)
    iou_thr = summary['draw_iou_thr']
    assert iou_thr == 0.5  # the config's test_cfg.nms, mmdet's default
    assert json.loads((out / 'results.json').read_text())[
        'draw_iou_thr'] == iou_thr
    duplicates = 0
    for entry in summary['results']:
        pred = entry['predictions']
        inst = _instances(np.reshape(pred['bboxes'], (-1, 4)),
                          pred['scores'], pred['labels'])
        drawn = drawn_detections(inst, SCORE_THR, iou_thr)
        assert pred['num_drawn'] == len(drawn)
        scores = inst.scores.numpy()
        assert (np.diff(scores[drawn]) >= 0).all()  # best drawn last
        iou = bbox_overlaps(inst.bboxes[drawn], inst.bboxes[drawn]).numpy()
        np.fill_diagonal(iou, 0)
        assert (iou <= iou_thr + 1e-6).all()
        left_out = [i for i in np.flatnonzero(scores >= SCORE_THR)
                    if i not in set(drawn.tolist())]
        for i in left_out:
            overlap = bbox_overlaps(inst.bboxes[i:i + 1],
                                    inst.bboxes[drawn]).numpy()[0]
            covering = (overlap > iou_thr) & (scores[drawn] >= scores[i])
            assert covering.any(), (entry['input'], i)
        duplicates += len(left_out)
    # The learned detector does make such duplicates (10 of 32 images had
    # two boxes above 0.3 overlapping by IoU > 0.7), so this test is one.
    assert duplicates > 0
