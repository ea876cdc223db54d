"""tools/slurm_train.sh's preemption logic with fake ``srun`` and
``scontrol`` on PATH (no Slurm here): the early-signal request, requeue
inside a batch job, a new srun outside one, and every other exit code
passed through."""
import os
import os.path as osp
import stat
import subprocess

from helpers import REPO

SCRIPT = osp.join(REPO, 'tools', 'slurm_train.sh')

# Each call appends its arguments to calls.txt and exits with the next code
# of codes.txt.
FAKE_SRUN = '''#!/usr/bin/env bash
echo "srun $*" >> "$FAKE_DIR/calls.txt"
code=$(head -n 1 "$FAKE_DIR/codes.txt")
sed -i 1d "$FAKE_DIR/codes.txt"
exit "$code"
'''
FAKE_SCONTROL = '''#!/usr/bin/env bash
echo "scontrol $*" >> "$FAKE_DIR/calls.txt"
exit "${FAKE_SCONTROL_RC:-0}"
'''


def slurm_train(tmp_path, codes, job_id=None, extra_env=None):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (tmp_path / 'codes.txt').write_text(''.join(f'{c}\n' for c in codes))
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
               FAKE_DIR=str(tmp_path), GPUS='2', GPUS_PER_NODE='2')
    env.pop('SLURM_JOB_ID', None)
    if job_id is not None:
        env['SLURM_JOB_ID'] = job_id
    env.update(extra_env or {})
    proc = subprocess.run(
        ['bash', SCRIPT, 'part', 'job', 'configs/x.py', 'work_dirs/x',
         '--data-root', 'data/coco'], cwd=REPO, env=env, timeout=60,
        capture_output=True, text=True)
    calls = (tmp_path / 'calls.txt').read_text().splitlines()
    return proc, calls


def test_srun_asks_for_the_early_signal_and_a_plain_end_passes_through(
        tmp_path):
    proc, calls = slurm_train(tmp_path, [0], job_id='42')
    assert proc.returncode == 0, proc.stderr
    assert len(calls) == 1
    assert '--signal=USR1@120' in calls[0].split()
    # No --resume: a requeued run resumes from the work dir by itself.
    assert '--resume' not in calls[0]
    assert calls[0].endswith('--work-dir=work_dirs/x --launcher=slurm '
                             '--data-root data/coco')


def test_preempted_batch_job_requeues_itself(tmp_path):
    proc, calls = slurm_train(tmp_path, [75], job_id='42')
    assert proc.returncode == 0, proc.stderr
    assert calls[1:] == ['scontrol requeue 42']
    assert 'requeueing job 42' in proc.stderr


def test_failed_requeue_is_one_error_line(tmp_path):
    proc, calls = slurm_train(tmp_path, [75], job_id='42',
                              extra_env={'FAKE_SCONTROL_RC': '1'})
    assert proc.returncode == 75
    assert calls[1:] == ['scontrol requeue 42']
    assert proc.stderr.splitlines()[-1].startswith(
        'error: scontrol requeue 42 failed; run the same command again')


def test_outside_a_batch_job_srun_runs_again_until_done(tmp_path):
    proc, calls = slurm_train(tmp_path, [75, 75, 0])
    assert proc.returncode == 0, proc.stderr
    assert [c.split()[0] for c in calls] == ['srun'] * 3
    assert calls[0] == calls[1] == calls[2]  # the same command each time


def test_requeues_stop_at_max_requeues(tmp_path):
    proc, calls = slurm_train(tmp_path, [75, 75, 75],
                              extra_env={'MAX_REQUEUES': '2',
                                         'PREEMPT_SIGNAL_TIME': '300'})
    assert proc.returncode == 75
    assert len(calls) == 3
    assert '--signal=USR1@300' in calls[0].split()
    assert 'preempted 3 times (MAX_REQUEUES=2)' in proc.stderr


def test_a_crash_is_not_requeued(tmp_path):
    proc, calls = slurm_train(tmp_path, [1], job_id='42')
    assert proc.returncode == 1
    assert len(calls) == 1  # no scontrol, no second srun
