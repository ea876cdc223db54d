"""Detection pictures a user can trust: which boxes a picture shows, and
:class:`DuplicateFreeDetLocalVisualizer`, mmdet's ``DetLocalVisualizer``
drawing only those. ``tools/test.py --show-dir`` / ``--show`` set it in the
config (:func:`convmlp_mm.config.options.add_test_outputs`);
``convmlp_mm.apis.inference`` draws its pictures with the same choice.

Why: the config's NMS runs per class, so one object can keep a box of each
class (RetinaNet's sigmoid scores). Drawn as they come, a weaker duplicate's
label can cover the right one ("square: 37.6" on a circle scored 0.83)."""
import numpy as np
import torch
from mmcv.ops import batched_nms
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer
from mmengine.logging import print_log

from convmlp_mm.config.walk import DEFAULT_DRAW_IOU

__all__ = ['DuplicateFreeDetLocalVisualizer',
           'detections_to_draw', 'drawn_detections']


def drawn_detections(instances, score_thr: float,
                     iou_thr: float = DEFAULT_DRAW_IOU) -> np.ndarray:
    """Which of ``instances`` (mmdet ``pred_instances``: ``bboxes``,
    ``scores``, ``labels``) a picture shows, in drawing order: the boxes
    scored at least ``score_thr``, then mmcv's ``batched_nms`` across
    classes at ``iou_thr`` (a box overlapping a higher-scored drawn box by
    more is not drawn), ordered by rising score so the best is drawn last,
    on top. Returns indices into ``instances``."""
    scores = torch.as_tensor(instances.scores).float().cpu()
    keep = torch.nonzero(scores >= score_thr).flatten()
    if keep.numel() == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = torch.as_tensor(instances.bboxes).float().cpu()[keep]
    labels = torch.as_tensor(instances.labels).cpu()[keep]
    _, kept = batched_nms(boxes, scores[keep], labels,
                          dict(type='nms', iou_threshold=iou_thr),
                          class_agnostic=True)
    chosen = keep[kept]
    order = torch.argsort(scores[chosen], stable=True)
    return chosen[order].numpy()


def detections_to_draw(sample, drawn: np.ndarray, height: int, width: int):
    """A copy of the mmdet data ``sample`` holding only the predictions
    ``drawn`` (:func:`drawn_detections`), in that order, with the boxes
    clamped inside the ``height`` x ``width`` picture (mmengine's visualizer
    warns about any corner not strictly inside, and boxes may reach the
    border)."""
    sample = sample.clone()
    instances = sample.pred_instances[torch.from_numpy(drawn)]
    boxes = torch.as_tensor(instances.bboxes).clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width - 0.01)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height - 0.01)
    instances.bboxes = boxes
    sample.pred_instances = instances
    return sample


@VISUALIZERS.register_module()
class DuplicateFreeDetLocalVisualizer(DetLocalVisualizer):
    """mmdet's ``DetLocalVisualizer`` whose predictions are drawn as
    :func:`detections_to_draw` chooses them: scored at least the hook's
    ``score_thr``; of boxes overlapping by more than ``draw_iou_thr`` (IoU,
    across classes; the config's test-time NMS threshold) only the best; the
    best on top. The choice is logged once per run.

    Args:
        draw_iou_thr: IoU above which a box is a duplicate of a
            higher-scored one and is not drawn.
        **kwargs: ``DetLocalVisualizer``'s arguments.
    """

    # mmengine's ManagerMeta requires ``name`` in the signature itself.
    def __init__(self, name: str = 'visualizer', *args,
                 draw_iou_thr: float = DEFAULT_DRAW_IOU, **kwargs) -> None:
        super().__init__(name, *args, **kwargs)
        self.draw_iou_thr = draw_iou_thr
        self._told = False

    def add_datasample(self, name, image, data_sample=None, draw_gt=True,
                       draw_pred=True, show=False, wait_time=0,
                       out_file=None, pred_score_thr=0.3, step=0) -> None:
        if draw_pred and data_sample is not None and \
                'pred_instances' in data_sample:
            if not self._told:
                print_log(
                    f'Pictures: boxes scored {pred_score_thr} or more '
                    '(default_hooks.visualization.score_thr); of boxes '
                    f'overlapping by IoU > {self.draw_iou_thr} only the '
                    'best-scored is drawn, on top.', logger='current')
                self._told = True
            data_sample = data_sample.cpu()
            drawn = drawn_detections(data_sample.pred_instances,
                                     pred_score_thr, self.draw_iou_thr)
            data_sample = detections_to_draw(data_sample, drawn,
                                             *image.shape[:2])
            pred_score_thr = -1.0  # already chosen
        super().add_datasample(
            name, image, data_sample, draw_gt=draw_gt, draw_pred=draw_pred,
            show=show, wait_time=wait_time, out_file=out_file,
            pred_score_thr=pred_score_thr, step=step)
