"""Fail loudly on a NaN metric: :class:`NonFiniteMetricHook`.

A validation or test run whose evaluator found nothing to score (for
example segmentation masks whose labels are all outside the classes: mmseg
reports ``aAcc nan``) would otherwise end with exit status 0. The tools add
this hook to every run they build.
"""
import math
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from convmlp_mm.errors import NonFiniteMetricError  # noqa: F401


def _non_finite(metrics: Optional[Dict]) -> Dict[str, float]:
    bad = {}
    for key, value in (metrics or {}).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue  # tables, strings: not a single number
        if not math.isfinite(number):
            bad[key] = number
    return bad


@HOOKS.register_module()
class NonFiniteMetricHook(Hook):
    """Raise :class:`NonFiniteMetricError` after a validation or test epoch
    that produced a NaN or infinite metric, naming the metrics and the
    likely cause."""

    priority = 'VERY_LOW'  # after the logger and checkpoint hooks

    def _check(self, runner, metrics: Optional[Dict], mode: str) -> None:
        bad = _non_finite(metrics)
        if not bad:
            return
        loader = runner.cfg.get(f'{mode}_dataloader', {})
        dataset = loader.get('dataset', {}) if isinstance(loader, dict) \
            else {}
        names = ', '.join(f'{k}={v}' for k, v in bad.items())
        raise NonFiniteMetricError(
            f'The {mode} metrics are not finite ({names}): the evaluator '
            f'found nothing to score in {mode}_dataloader (data_root '
            f'{dataset.get("data_root")}, ann_file or seg maps '
            f'{dataset.get("ann_file") or dataset.get("data_prefix")}). '
            'Segmentation: the masks must hold labels 0..num_classes-1 '
            '(after reduce_zero_label) or 255; detection: the annotation '
            'file needs objects of the configured classes.')

    def after_val_epoch(self, runner, metrics: Optional[Dict] = None
                        ) -> None:
        self._check(runner, metrics, 'val')

    def after_test_epoch(self, runner, metrics: Optional[Dict] = None
                         ) -> None:
        self._check(runner, metrics, 'test')
