"""tools/analysis/resume_speed.py: the table of time to the first new batch
after resuming, mmengine's loop against the resumable one. The speed claim
is the benchmark's (docs/performance.md); here the tool runs and prints
its table for the resume points asked."""
import re

import pytest

from tools_run import explain, python_tool, run

pytestmark = pytest.mark.e2e


def test_resume_speed_prints_both_loops_per_resume_point(tmp_path):
    proc = run(python_tool('analysis/resume_speed.py', '--iters', '0', '3',
                           '40', '--upstream-up-to', '3'), tmp_path,
               timeout=300)
    assert proc.returncode == 0, explain(proc)
    rows = {int(m[0]): (int(m[1]), m[2], m[3]) for m in re.findall(
        r'^\| (\d+) \| (\d+) \| ([\d.]+|not run) \| ([\d.]+) \|$',
        proc.stdout, re.M)}
    assert sorted(rows) == [0, 3, 40]
    # Images skipped: N x the config's batch per process, 2 (8 GPUs x 2
    # = the paper's 16)
    assert {n: row[0] for n, row in rows.items()} == {0: 0, 3: 6, 40: 80}
    assert rows[3][1] != 'not run'
    assert rows[40][1] == 'not run'  # beyond --upstream-up-to
    assert 'Time from building the data loader to the first new batch ' \
        '(batch 2, 0 workers)' in proc.stdout
