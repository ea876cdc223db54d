"""The models the suite trains learn: with a fixed seed, tiny RetinaNet and
Semantic FPN on the built-in shapes score well above chance (tests/conftest.py
trains each once per run). Thresholds: the values measured over seeds 0-4
(RetinaNet bbox mAP 0.655-0.721, mAP_50 0.97-0.99; Semantic FPN mIoU
87.1-87.7) less a margin; chance is near 0 for mAP and about 25 (4 classes,
background the largest) for mIoU. A class-mapping, label-shift or
post-processing bug drops these far below."""
import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.xdist_group('learned_detector')
def test_tiny_retinanet_learns_the_shapes(learned_detector):
    metrics = learned_detector['metrics']
    assert metrics['coco/bbox_mAP'] >= 0.45, metrics
    assert metrics['coco/bbox_mAP_50'] >= 0.85, metrics


@pytest.mark.xdist_group('learned_segmentor')
def test_tiny_semantic_fpn_learns_the_shapes(learned_segmentor):
    metrics = learned_segmentor['metrics']
    assert metrics['mIoU'] >= 70, metrics
    assert metrics['aAcc'] >= 95, metrics
