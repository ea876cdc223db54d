"""``make demo``: train and evaluate ConvMLP-S models on built-in data.

1. Writes the synthetic shapes datasets (COCO and ADE20K layout) under
   ``data/`` unless they are already there.
2. Trains RetinaNet-ConvMLP-S and Semantic-FPN-ConvMLP-S (and, with
   ``--with-maskrcnn``, ``--with-cascade``, ``--with-upernet``: Mask
   R-CNN, Cascade Mask R-CNN, UperNet with ConvMLP-S) from scratch with
   ``tools/train.py`` on the visible configs in ``configs/demo/``, then
   evaluates the last checkpoint with ``tools/test.py`` (pycocotools bbox mAP,
   mmseg mIoU).
3. Prints one results table, writes ``work_dirs/demo/results.json`` and draws
   pictures: validation predictions next to the ground truth, and the
   training loss / validation metric curves.

Each step is shown as ``step k/N`` with the time spent and an estimate of
the time left (the last run's times, else typical ones, scaled by how fast
this machine has been so far; during a training, its own ETA). Stopped by
a preemption or Ctrl-C, a training saves its state and exits 75; the demo
then says so and exits 75 too.

Run it again and finished steps are reused: a training whose work dir's
``last_checkpoint`` (written by the crash-safe checkpoint hooks once a file is
complete) names its final checkpoint is done; an interrupted one is run again
and ``tools/train.py`` resumes it from that ``last_checkpoint`` by itself
(docs/preemption.md). ``--fresh`` starts over.
"""
import argparse
import collections
import glob
import json
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

from convmlp_mm_cli import command

# The heavy imports (torch, through mmengine.runner and convmlp_mm) are
# inside the functions that use them: --help answers at once.

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# What the default demo must reach on the built-in validation split.
THRESHOLDS = {'bbox_mAP': 0.6, 'mIoU': 0.7}
# Console lines worth showing from the train/test processes (the full logs
# are in each work dir): progress with ETA and losses, metrics, problems.
SHOWN = re.compile(
    r'mmengine - (INFO - (Epoch|Iter|Saving|Load|Resum|The best)|'
    r'(WARNING|ERROR) - (?!"(FileClient|HardDiskBackend)))|'
    r'^\| +\w+ +\| +[\d.]+|^Traceback|Error')
# tools/train.py's exit status after a preemption (SIGTERM/SIGUSR1, or the
# demo's Ctrl-C): the state is saved, running again resumes
# (convmlp_mm.engine.hooks.PREEMPTED_EXIT_CODE, docs/preemption.md).
PREEMPTED = 75
# Seconds of each step on 2 quiet cores (docs/get_started.md), the estimate
# before this work dir has times of its own: (train, test) per model.
TYPICAL_SECONDS = {'retinanet': (150, 25), 'semfpn': (100, 20),
                   'maskrcnn': (300, 30), 'cascade': (450, 40),
                   'upernet': (150, 20)}
SMOKE_SECONDS = (20, 15)
# mmengine's ETA in a progress line, e.g. "eta: 0:01:23" or "1 day, 0:01:23"
ETA = re.compile(r'eta: (?:(\d+) days?, )?(\d+):(\d\d):(\d\d)')
# The time stamp that starts each line of mmengine's log file.
LOG_TIME = re.compile(r'^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) - mmengine')


@dataclass
class Job:
    """One model of the demo: config, data, metric."""
    key: str
    title: str
    config: str
    dataset: str  # 'coco' or 'ade20k'
    metrics: Dict[str, str]  # results.json key -> key in mmengine's log
    by_epoch: bool
    extra: List[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return 'segmentation' if self.dataset == 'ade20k' else 'detection'


JOBS = {
    'retinanet':
    Job('retinanet', 'RetinaNet-ConvMLP-S',
        'configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py', 'coco',
        {'bbox_mAP': 'coco/bbox_mAP', 'bbox_mAP_50': 'coco/bbox_mAP_50'},
        by_epoch=True),
    'semfpn':
    Job('semfpn', 'Semantic-FPN-ConvMLP-S',
        'configs/demo/fpn_convmlp_s_demo_shapes.py', 'ade20k',
        {'mIoU': 'mIoU', 'mAcc': 'mAcc', 'aAcc': 'aAcc'}, by_epoch=False),
    'maskrcnn':
    Job('maskrcnn', 'Mask R-CNN-ConvMLP-S',
        'configs/demo/maskrcnn_convmlp_s_fpn_demo_shapes.py', 'coco',
        {'maskrcnn_bbox_mAP': 'coco/bbox_mAP',
         'maskrcnn_segm_mAP': 'coco/segm_mAP'}, by_epoch=True),
    'cascade':
    Job('cascade', 'Cascade Mask R-CNN-ConvMLP-S',
        'configs/demo/cascade_maskrcnn_convmlp_s_fpn_demo_shapes.py', 'coco',
        {'cascade_bbox_mAP': 'coco/bbox_mAP',
         'cascade_segm_mAP': 'coco/segm_mAP'}, by_epoch=True),
    'upernet':
    Job('upernet', 'UperNet-ConvMLP-S',
        'configs/demo/upernet_convmlp_s_demo_shapes.py', 'ade20k',
        {'upernet_mIoU': 'mIoU', 'upernet_mAcc': 'mAcc'}, by_epoch=False),
}

# --smoke: the whole path in seconds (tests, a quick check of a set-up).
SMOKE_DATA = dict(num_train=8, num_val=2, image_size=(128, 96))
SMOKE_OPTIONS = {
    True: ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
           'default_hooks.checkpoint.interval=1',
           'train_dataloader.batch_size=4', 'default_hooks.logger.interval=1'],
    False: ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1'],
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and evaluate ConvMLP-S detectors/segmentors on '
        'built-in synthetic data, then print and draw the results.')
    parser.add_argument(
        '--work-dir',
        help='default: work_dirs/demo (work_dirs/demo_smoke with --smoke, '
        'so that a smoke run never feeds a real one)')
    parser.add_argument('--data-dir', default='data',
                        help='where the synthetic datasets live '
                        '(synthetic_coco/, synthetic_ade20k/)')
    parser.add_argument('--with-maskrcnn', action='store_true',
                        help='also train Mask R-CNN-ConvMLP-S (about 2x '
                        'the RetinaNet time)')
    parser.add_argument('--with-cascade', action='store_true',
                        help='also train Cascade Mask R-CNN-ConvMLP-S')
    parser.add_argument('--with-upernet', action='store_true',
                        help='also train UperNet-ConvMLP-S')
    parser.add_argument('--only', nargs='+', choices=sorted(JOBS),
                        help='run only these models')
    parser.add_argument('--fresh', action='store_true',
                        help='delete the demo work dir and train again')
    parser.add_argument('--smoke', action='store_true',
                        help='a few iterations on tiny data: checks the '
                        'path, not the thresholds')
    parser.add_argument('--verbose', action='store_true',
                        help='show the train/test processes\' whole output')
    return parser.parse_args(argv)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------
def write_json_atomic(path: str, data) -> None:
    """Write ``data`` so that ``path`` is either the old or the new file."""
    from convmlp_mm.checkpoint import write_text_atomically
    write_text_atomically(path, json.dumps(data, indent=2, sort_keys=True))


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named by the work dir's ``last_checkpoint`` (mmengine's
    ``find_latest_checkpoint``), or ``None``. The crash-safe checkpoint hooks
    write that name only once its file is complete, and ``tools/train.py``
    resumes from it."""
    if not osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        return None  # mmengine would log that it found none
    from mmengine.runner import find_latest_checkpoint
    path = find_latest_checkpoint(work_dir)
    return path if path and osp.isfile(path) else None


def is_last_checkpoint(work_dir: str, path: str) -> bool:
    last = last_checkpoint(work_dir)
    return last is not None and osp.realpath(last) == osp.realpath(path)


def show_path(path: str) -> str:
    """Relative to the current folder when inside it, else absolute."""
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


def clock(seconds: float) -> str:
    """``75`` -> ``'1 min 15 s'``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f'{hours} h {minutes:02d} min'
    return f'{minutes} min {secs:02d} s' if minutes else f'{secs} s'


class Progress:
    """The demo's steps as ``step k/N``, with the time spent and an
    estimate of the time left: each step's expected seconds, scaled by how
    much slower or faster than expected the finished steps ran; inside a
    training, its own ETA (mmengine's) replaces its step's estimate."""

    def __init__(self, steps: Sequence[Tuple[str, float]]):
        self.steps = list(steps)  # (title, expected seconds)
        self.started = time.time()
        self.index = -1
        self.step_started = self.started
        self.expected_done = 0.0
        self.actual_done = 0.0

    def _speed(self) -> float:
        # Below 20 expected seconds a ratio says more about start-up noise.
        if self.expected_done < 20:
            return 1.0
        return self.actual_done / self.expected_done

    def left(self, step_left: Optional[float] = None) -> float:
        """Seconds left: this step's (``step_left``, else its estimate less
        the time spent on it) and the later steps'."""
        speed = self._speed()
        if step_left is None:
            expected = self.steps[self.index][1] * speed
            step_left = max(0.0, expected - (time.time() - self.step_started))
        return step_left + speed * sum(e for _, e in
                                       self.steps[self.index + 1:])

    def start(self) -> None:
        """Print the next step's header."""
        self.finish()
        self.index += 1
        self.step_started = time.time()
        title = self.steps[self.index][0]
        print(f'\n== step {self.index + 1}/{len(self.steps)}: {title} '
              f'({clock(self.step_started - self.started)} so far, about '
              f'{clock(self.left())} left)', flush=True)

    def finish(self) -> None:
        if self.index < 0 or self.step_started is None:
            return
        expected = self.steps[self.index][1]
        if expected > 0:  # steps that reuse earlier work do not count
            self.expected_done += expected
            self.actual_done += time.time() - self.step_started
        self.step_started = None

    def eta_note(self, line: str) -> str:
        """`` [demo: about X left]`` for a line with mmengine's ETA."""
        match = ETA.search(line)
        if match is None or self.index < 0:
            return ''
        days, hours, minutes, secs = (int(g or 0) for g in match.groups())
        eta = ((days * 24 + hours) * 60 + minutes) * 60 + secs
        return f'  [demo: about {clock(self.left(eta))} left]'


def run_logged(cmd: Sequence[str], log_path: str, verbose: bool,
               progress: Optional[Progress] = None,
               preemptible: bool = False) -> int:
    """Run ``cmd``, echo the interesting lines, keep the rest in a file.
    Ctrl-C or SIGTERM/SIGUSR1 to the demo is passed on to ``cmd`` as
    SIGTERM, which a training answers by saving its state and exiting 75
    (returned when ``preemptible``; any other failure ends the demo)."""
    shown = [show_path(c) if osp.isabs(c) else c for c in cmd]
    shown[0] = 'python'
    print('$ ' + ' '.join(shown), flush=True)
    tail = collections.deque(maxlen=60)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    stopped = []
    # Its own session: a Ctrl-C in the terminal reaches the demo only, which
    # passes it on once as the SIGTERM the training saves on.
    with open(log_path, 'w', buffering=1) as log, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=REPO, env=env, start_new_session=True) as proc:

        def pass_on(signum, frame):
            stopped.append(signum)
            proc.send_signal(signal.SIGTERM)

        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
        previous = {sig: signal.signal(sig, pass_on) for sig in handled}
        try:
            for line in proc.stdout:
                log.write(line)
                tail.append(line)
                if verbose or SHOWN.search(line):
                    note = progress.eta_note(line) if progress else ''
                    if note:
                        line = line.rstrip('\n') + note + '\n'
                    sys.stdout.write('  ' + line)
                    sys.stdout.flush()
            code = proc.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if code == PREEMPTED and preemptible:
        return code
    if code != 0:
        sys.stdout.write(''.join(tail))
        if stopped:
            raise SystemExit(f'error: stopped (signal {stopped[0]}) while '
                             f'`{" ".join(cmd[1:3])}` ran; its output is in '
                             f'{log_path}')
        raise SystemExit(f'error: `{" ".join(cmd[1:3])}` failed (exit code '
                         f'{code}); its whole output is in {log_path}')
    return code


def training_seconds(work_dir: str) -> Tuple[float, int]:
    """The whole training time of a work dir and its number of runs: from
    each run's log (``WORK_DIR/<time>/<time>.log``), its first to its last
    line, summed, so that a resumed training counts every part."""
    total, runs = 0.0, 0
    for path in sorted(glob.glob(osp.join(work_dir, '2*', '2*.log'))):
        first = last = None
        with open(path, errors='replace') as f:
            for line in f:
                match = LOG_TIME.match(line)
                if match:
                    first = first or match.group(1)
                    last = match.group(1)
        if first:
            def parse(text):
                return datetime.strptime(text, '%Y/%m/%d %H:%M:%S')
            total += (parse(last) - parse(first)).total_seconds()
            runs += 1
    return total, runs


def final_step(job: Job, smoke: bool) -> int:
    """max_epochs / max_iters of the job's config (and the smoke options)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, job.config))
    if smoke:
        return 1 if job.by_epoch else 2
    loop = cfg.train_cfg
    return loop.max_epochs if job.by_epoch else loop.max_iters


def newest_metrics_json(test_dir: str) -> Dict:
    """The metrics mmengine's LoggerHook dumped for the newest test run."""
    runs = sorted(glob.glob(osp.join(test_dir, '2*', '2*.json')))
    if not runs:
        raise SystemExit(f'error: tools/test.py left no metrics in {test_dir}')
    with open(runs[-1]) as f:
        return json.load(f)


# --------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------
def make_data(data_dir: str, smoke: bool) -> Dict[str, str]:
    from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset
    sizes = SMOKE_DATA if smoke else {}
    suffix = '_smoke' if smoke else ''
    coco = make_coco_dataset(
        osp.join(data_dir, f'synthetic_coco{suffix}'), **sizes)
    ade = make_ade20k_dataset(
        osp.join(data_dir, f'synthetic_ade20k{suffix}'), **sizes)
    return {'coco': coco, 'ade20k': ade}


def final_checkpoint(job: Job, work_dir: str, smoke: bool) -> str:
    unit = 'epoch' if job.by_epoch else 'iter'
    return osp.join(work_dir, f'{unit}_{final_step(job, smoke)}.pth')


def train(job: Job, work_dir: str, data_root: str, args,
          progress: Optional[Progress] = None) -> None:
    """Train unless the work dir's last checkpoint is the final one; a
    cut-short run resumes (``tools/train.py`` does it from the work dir).
    A training stopped by a preemption ends the demo with exit status 75
    and says that running it again resumes."""
    final = final_checkpoint(job, work_dir, args.smoke)
    if is_last_checkpoint(work_dir, final):
        print(f'{job.title}: trained already ({show_path(final)})')
        return
    resume = last_checkpoint(work_dir)
    if resume:
        print(f'{job.title}: resuming from {show_path(resume)}')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'),
           osp.join(REPO, job.config), '--work-dir', work_dir,
           '--data-root', data_root]
    if args.smoke:
        cmd += ['--cfg-options'] + SMOKE_OPTIONS[job.by_epoch]
    code = run_logged(cmd, osp.join(work_dir, 'train_console.log'),
                      args.verbose, progress, preemptible=True)
    if code == PREEMPTED:
        saved = last_checkpoint(work_dir)
        where = f' ({show_path(saved)})' if saved else ''
        print(f'\nstopped: the training of {job.title} saved its state'
              f'{where} and exited {PREEMPTED}. Run the same command again '
              '(make demo) to resume it from there; finished steps are '
              'reused.', file=sys.stderr, flush=True)
        raise SystemExit(PREEMPTED)
    if not is_last_checkpoint(work_dir, final):
        raise SystemExit(f'error: training ended without {final}')


def tested_already(work_dir: str) -> Optional[Dict]:
    """The kept result of testing the work dir's last checkpoint, if that
    is the checkpoint it holds."""
    checkpoint = last_checkpoint(work_dir)
    done_file = osp.join(work_dir, 'test_metrics.json')
    if checkpoint is None or not osp.isfile(done_file):
        return None
    with open(done_file) as f:
        done = json.load(f)
    if (done.get('checkpoint') == checkpoint and
            done.get('mtime') == os.stat(checkpoint).st_mtime):
        return done
    return None


def test(job: Job, work_dir: str, data_root: str, args,
         progress: Optional[Progress] = None) -> Dict:
    """Evaluate the last checkpoint (once: the result is kept in a file)."""
    checkpoint = last_checkpoint(work_dir)
    if checkpoint is None:
        raise SystemExit(f'error: {work_dir} has no last_checkpoint to test')
    done_file = osp.join(work_dir, 'test_metrics.json')
    done = tested_already(work_dir)
    if done is not None:
        print(f'{job.title}: evaluated already ({show_path(done_file)})')
        return done
    test_dir = osp.join(work_dir, 'test')
    shutil.rmtree(test_dir, ignore_errors=True)  # a cut-short earlier test
    os.makedirs(test_dir)
    out = (osp.join(test_dir, 'predictions.pkl') if job.task == 'detection'
           else osp.join(test_dir, 'pred_masks'))
    # mmdet puts --show-dir under <work dir>/<time>/, mmseg takes it as is.
    show_dir = ('show' if job.task == 'detection' else
                osp.join(test_dir, 'show'))
    cmd = [sys.executable, osp.join(REPO, 'tools', 'test.py'),
           osp.join(REPO, job.config), checkpoint, '--work-dir', test_dir,
           '--data-root', data_root, '--out', out, '--show-dir', show_dir]
    start = time.time()
    run_logged(cmd, osp.join(work_dir, 'test_console.log'), args.verbose,
               progress)
    logged = newest_metrics_json(test_dir)
    metrics = {}
    no_detections = job.task == 'detection' and not any(
        k.startswith('coco/') for k in logged)
    for key, log_key in job.metrics.items():
        if log_key not in logged:
            if no_detections:
                # CocoMetric reports nothing when the model detects nothing.
                print(f'{job.title}: no detections at all; {key} = 0')
                logged[log_key] = 0.0
            else:
                raise SystemExit(f'error: {log_key} is missing from the '
                                 f'test metrics {sorted(logged)}')
        value = float(logged[log_key])
        # mmseg reports percentages, pycocotools fractions.
        metrics[key] = value / 100 if job.task == 'segmentation' else value
    show = glob.glob(osp.join(test_dir, '2*', 'show')) + glob.glob(
        osp.join(test_dir, 'show', 'vis_data', 'vis_image'))
    done = dict(checkpoint=checkpoint, mtime=os.stat(checkpoint).st_mtime,
                metrics=metrics, test_seconds=round(time.time() - start, 1),
                predictions=out, show_dir=sorted(show)[-1] if show else None)
    write_json_atomic(done_file, done)
    return done


def draw_pictures(jobs: Sequence[Job], results: Dict, roots: Dict[str, str],
                  work_root: str) -> List[str]:
    """Curves of every run, and validation predictions of each model."""
    from mmengine.config import Config

    from convmlp_mm.analysis import (
        find_files,
        plot_training_curves,
        save_image_grid,
        save_segmentation_figure,
    )
    pictures = [plot_training_curves(
        [(job.title, osp.join(work_root, job.key), list(job.metrics.values()))
         for job in jobs], osp.join(work_root, 'training_curves.png'))]
    for job in jobs:
        done = results['models'][job.key]
        out_file = osp.join(work_root, f'{job.key}_val_predictions.png')
        if job.task == 'detection':
            shown = find_files(done['show_dir'], '*.jpg', limit=6)
            if not shown:
                raise SystemExit(f'error: no pictures in {done["show_dir"]}')
            what = 'boxes and masks' if any(
                'segm' in k for k in job.metrics.values()) else 'boxes'
            pictures.append(save_image_grid(
                shown, out_file,
                f'{job.title} on validation images: ground truth (left), '
                f'predicted {what} with score >= 0.5 (right)'))
        else:
            metainfo = Config.fromfile(osp.join(REPO, job.config)).metainfo
            miou = next(k for k, v in job.metrics.items() if v == 'mIoU')
            preds = find_files(done['predictions'], '*.png', limit=4)
            root = roots[job.dataset]
            samples = [(osp.join(root, 'images', 'validation',
                                 osp.basename(p)[:-4] + '.jpg'),
                        osp.join(root, 'annotations', 'validation',
                                 osp.basename(p)), p) for p in preds]
            pictures.append(save_segmentation_figure(
                samples, metainfo['classes'], metainfo['palette'], out_file,
                f'{job.title} on validation images (mIoU '
                f'{done["metrics"][miou]:.3f} over all of them)'))
    return pictures


@command
def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.time()
    work_root = osp.abspath(args.work_dir or osp.join(
        'work_dirs', 'demo_smoke' if args.smoke else 'demo'))
    if args.fresh and osp.isdir(work_root):
        shutil.rmtree(work_root)
    os.makedirs(work_root, exist_ok=True)
    keys = args.only or (['retinanet', 'semfpn'] +
                         (['maskrcnn'] if args.with_maskrcnn else []) +
                         (['cascade'] if args.with_cascade else []) +
                         (['upernet'] if args.with_upernet else []))
    jobs = [JOBS[k] for k in keys]
    progress = Progress(plan_steps(jobs, work_root, args.smoke))

    progress.start()
    roots = make_data(osp.abspath(args.data_dir), args.smoke)
    for name, root in roots.items():
        print(f'{name}: {show_path(root)}')

    results: Dict = {'models': {}}
    for job in jobs:
        work_dir = osp.join(work_root, job.key)
        os.makedirs(work_dir, exist_ok=True)
        progress.start()
        train(job, work_dir, roots[job.dataset], args, progress)
        progress.start()
        done = test(job, work_dir, roots[job.dataset], args, progress)
        entry = dict(done, config=job.config, work_dir=work_dir)
        # Every run of the training, a resumed one's earlier parts too.
        seconds, runs = training_seconds(work_dir)
        entry.update(train_seconds=round(seconds, 1), train_runs=runs)
        results['models'][job.key] = entry
        results.update(done['metrics'])

    progress.start()
    pictures = draw_pictures(jobs, results, roots, work_root)
    progress.finish()
    results['pictures'] = pictures
    results['seconds'] = round(time.time() - started, 1)
    results['smoke'] = args.smoke
    passed = print_table(jobs, results, check=not args.smoke)
    results['passed'] = passed
    write_json_atomic(osp.join(work_root, 'results.json'), results)
    print(f'\nresults: {show_path(osp.join(work_root, "results.json"))}')
    print('pictures:')
    for path in pictures:
        print(f'  {show_path(path)}')
    return 0 if passed or args.smoke else 1


def plan_steps(jobs: Sequence[Job], work_root: str,
               smoke: bool) -> List[Tuple[str, float]]:
    """The demo's steps with the seconds each is expected to take: 0 for
    what is done already, else this work dir's last times, else typical
    ones."""
    previous = _previous_results(work_root).get('models', {})
    steps = [('data', 5.0)]
    for job in jobs:
        work_dir = osp.join(work_root, job.key)
        typical = SMOKE_SECONDS if smoke else TYPICAL_SECONDS[job.key]
        before = previous.get(job.key, {})
        trained = osp.isdir(work_dir) and is_last_checkpoint(
            work_dir, final_checkpoint(job, work_dir, smoke))
        train_s = 0.0 if trained else float(
            before.get('train_seconds') or typical[0])
        tested = trained and tested_already(work_dir) is not None
        test_s = 0.0 if tested else float(
            before.get('test_seconds') or typical[1])
        steps += [(f'{job.title}: train ({job.config})', train_s),
                  (f'{job.title}: test', test_s)]
    return steps + [('pictures', 10.0)]


def _previous_results(work_root: str) -> Dict:
    path = osp.join(work_root, 'results.json')
    if not osp.isfile(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError:
        return {}


def print_table(jobs: Sequence[Job], results: Dict, check: bool) -> bool:
    """Print the results table; True when every threshold is reached."""
    rows = []
    passed = True
    for job in jobs:
        model = results['models'][job.key]
        for key, value in model['metrics'].items():
            threshold = THRESHOLDS.get(key)
            verdict = ''
            if threshold is not None:
                ok = value >= threshold
                passed &= ok
                verdict = f'>= {threshold:.2f} ' + ('yes' if ok else 'NO')
            train_s = model.get('train_seconds')
            runs = model.get('train_runs') or 0
            shown = f'{train_s:.0f} s' if train_s else 'unknown'
            if runs > 1:
                shown += f' ({runs} runs)'
            rows.append((job.title, key, f'{value:.3f}', verdict, shown))
    header = ('model', 'metric', 'value', 'target', 'train time')
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    line = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def cells(values):
        padded = (f' {c:<{w}} ' for c, w in zip(values, widths))
        return '|' + '|'.join(padded) + '|'

    print('\n' + line)
    print(cells(header))
    print(line)
    for row in rows:
        print(cells(row))
    print(line)
    print(f'total {results["seconds"]:.0f} s')
    if check:
        print('all targets reached' if passed else
              'WARNING: a target was missed (see the table)')
    return passed


if __name__ == '__main__':
    sys.exit(main())
