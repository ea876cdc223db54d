"""Random states in the checkpoint: :class:`RandomStateHook`.

Every checkpoint gets, for each rank, the state of Python's ``random``,
NumPy's global generator and torch's CPU (and CUDA) generators as they were
at the end of the last training iteration, plus the seed of the data order.
A resumed run puts them back before its first iteration, so drop path and
anything else the model draws continue as in an uninterrupted run. The
data-loader workers need no saved state: each sample's draws are seeded
from its position (:mod:`convmlp_mm.datasets.samplers`).

The states are stored as tensors and plain numbers, which
``torch.load(weights_only=True)`` reads without any allow-listed class.
"""
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

CHECKPOINT_KEY = 'random_states'


def capture_random_states() -> dict:
    """This process's generator states, in a ``weights_only``-safe form."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    states = dict(
        python=[version, torch.tensor(internal, dtype=torch.int64), gauss],
        numpy=dict(
            key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
            pos=int(np_state['state']['pos']),
            has_gauss=int(np_state['has_gauss']),
            gauss=float(np_state['gauss'])),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict) -> None:
    """Put back what :func:`capture_random_states` returned."""
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal.tolist()), gauss))
    np_state = states['numpy']
    np.random.set_state(dict(
        bit_generator='MT19937',
        state=dict(key=np_state['key'].numpy().astype(np.uint32),
                   pos=np_state['pos']),
        has_gauss=np_state['has_gauss'], gauss=np_state['gauss']))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


def _data_sampler(runner):
    loader = runner.train_loop.dataloader
    return getattr(loader.batch_sampler, 'sampler', None) or loader.sampler


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every rank's random states in each checkpoint; restore them on
    resume. No arguments."""

    # Before CheckpointHook (VERY_LOW) saves at the end of an iteration.
    priority = 'NORMAL'

    def __init__(self) -> None:
        self._states: Optional[List[dict]] = None
        self._resumed: Optional[dict] = None

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        # Every rank takes part: only rank 0 writes the checkpoint, and it
        # must hold the others' states.
        states = capture_random_states()
        _, world_size = get_dist_info()
        self._states = all_gather_object(states) if world_size > 1 else [
            states]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._states is None:
            return
        sampler = _data_sampler(runner)
        checkpoint[CHECKPOINT_KEY] = dict(
            ranks=self._states, data_seed=getattr(sampler, 'seed', None))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resumed = checkpoint.get(CHECKPOINT_KEY)

    def before_train(self, runner) -> None:
        # Here rather than in after_load_checkpoint: Runner.resume re-seeds
        # every generator from the checkpoint's seed after that hook.
        saved, self._resumed = self._resumed, None
        if saved is None or runner.iter == 0:
            return
        rank, world_size = get_dist_info()
        ranks = saved['ranks']
        if len(ranks) != world_size:
            runner.logger.warning(
                f'The checkpoint holds random states of {len(ranks)} '
                f'processes and this run has {world_size}: the states are '
                'not restored, so the run will not repeat the interrupted '
                'one exactly.')
        else:
            restore_random_states(ranks[rank])
        sampler = _data_sampler(runner)
        if saved.get('data_seed') is not None and hasattr(sampler, 'seed'):
            sampler.seed = saved['data_seed']
