"""tools/analysis/resume_speed.py: the table of time to the first new batch
after resuming, mmengine's loop against the resumable one."""
import re
import subprocess
import sys

from tools_run import REPO


def test_resume_speed_prints_both_loops_per_resume_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/resume_speed.py', '--iters', '0',
         '20', '3000', '--upstream-up-to', '20'], cwd=REPO, timeout=300,
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = dict((int(m[0]), (m[1], m[2])) for m in re.findall(
        r'^\| (\d+) \| \d+ \| ([\d.]+|not run) \| ([\d.]+) \|$',
        proc.stdout, re.M))
    assert sorted(rows) == [0, 20, 3000]
    assert rows[3000][0] == 'not run'  # beyond --upstream-up-to
    # mmengine's loop loads and augments 40 images before the first new
    # batch at N = 20; the resumable one none.
    assert float(rows[20][0]) > float(rows[20][1])
