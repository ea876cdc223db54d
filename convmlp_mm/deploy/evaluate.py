"""Score a model (PyTorch, or with its network in ONNX Runtime) on a
config's test set with the config's own dataset, pipeline and evaluator
(mmengine's ``Evaluator``: ``CocoMetric``, ``IoUMetric``)."""
import copy
from typing import Dict, Optional

from mmengine.config import Config

from convmlp_mm.config import scope_registry, set_data_root


def evaluate(model, cfg: Config, data_root: Optional[str] = None,
             limit: Optional[int] = None) -> Dict[str, float]:
    """The metrics of ``model.test_step`` on ``cfg.test_dataloader``'s
    dataset (one image at a time; the first ``limit`` images)."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope, init_default_scope
    cfg = copy.deepcopy(cfg)
    if data_root is not None:
        set_data_root(cfg, data_root)
    init_default_scope(cfg.default_scope)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        dataset = scope_registry(cfg.default_scope, 'DATASETS').build(
            cfg.test_dataloader.dataset)
        evaluator = Evaluator(cfg.test_evaluator)
        evaluator.dataset_meta = dataset.metainfo
        count = len(dataset) if limit is None else min(limit, len(dataset))
        for index in range(count):
            data = pseudo_collate([dataset[index]])
            with torch.no_grad():
                outputs = model.test_step(data)
            evaluator.process(data_samples=outputs, data_batch=data)
        return evaluator.evaluate(count)
