"""Quiet output: no pkg_resources deprecation noise on a tool command, a
user mistake ends with one error line, and an analysis tool prints its
result rather than mmengine's per-parameter initialisation records."""
import cv2
import numpy as np

from convmlp_mm.datasets import make_coco_dataset

from tools_run import RETINANET, explain, python_tool, run


def test_train_preflight_prints_one_error_line_and_no_deprecation(
        tmp_path):
    root = make_coco_dataset(str(tmp_path / 'catdog'), num_train=2,
                             num_val=1, image_size=(64, 48),
                             classes=('cat', 'dog'))
    proc = run(python_tool('train.py', RETINANET, '--data-root', root,
                           '--preflight'), tmp_path, timeout=120)
    assert proc.returncode != 0, explain(proc)
    output = proc.stdout + proc.stderr
    assert 'pkg_resources is deprecated' not in output, explain(proc)
    assert 'Traceback' not in output, explain(proc)
    errors = [line for line in proc.stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1 and 'holds 2 of the 80 classes' in errors[0]


def test_visualize_features_prints_its_result_not_the_init_log(tmp_path):
    image = tmp_path / 'img.jpg'
    cv2.imwrite(str(image), np.full((48, 64, 3), 127, np.uint8))
    proc = run(python_tool('analysis/visualize_features.py', 's',
                           str(image), '--out-dir', str(tmp_path / 'out')),
               tmp_path, timeout=120)
    assert proc.returncode == 0, explain(proc)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    # One result line; mmengine's init records were ~620 lines.
    assert len(lines) <= 3, explain(proc)
    assert 'img_features.png' in lines[-1]
    assert 'Initialized by' not in proc.stdout + proc.stderr
