"""tools/analysis/resume_speed.py: the table of time to the first new batch
after resuming, mmengine's loop against the resumable one."""
import re
import subprocess
import sys

from tools_run import REPO


def test_resume_speed_prints_both_loops_per_resume_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/resume_speed.py', '--iters', '0',
         '200', '3000', '--upstream-up-to', '200'], cwd=REPO, timeout=300,
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = dict((int(m[0]), (m[1], m[2])) for m in re.findall(
        r'^\| (\d+) \| \d+ \| ([\d.]+|not run) \| ([\d.]+) \|$',
        proc.stdout, re.M))
    assert sorted(rows) == [0, 200, 3000]
    assert rows[3000][0] == 'not run'  # beyond --upstream-up-to
    # mmengine's loop loads and augments 400 images before the first new
    # batch at N = 200 (about 0.3 s here); the resumable one none. (At
    # N = 20 the difference is within a busy machine's noise.)
    assert float(rows[200][0]) > float(rows[200][1])
