"""The demo's whole path (``tools/demo.py --smoke``: a few iterations on tiny
data) through the real configs, tools/train.py and tools/test.py."""
import json
import os
import os.path as osp
import subprocess
import sys

from helpers import REPO, load_tool


def load_demo():
    return load_tool('tools/demo.py')


def run_demo(tmp_path, *extra):
    cmd = [sys.executable, osp.join(REPO, 'tools', 'demo.py'), '--smoke',
           '--work-dir', str(tmp_path / 'wd'), '--data-dir',
           str(tmp_path / 'data'), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_smoke_demo_end_to_end_and_rerun(tmp_path):
    out = run_demo(tmp_path)
    # mmengine's progress lines come through, then the table and the paths.
    assert 'Epoch(train) [1][2/2]' in out and 'Iter(train) [2/2]' in out
    assert 'eta:' in out and 'loss:' in out
    assert '| bbox_mAP' in out and '| mIoU' in out
    with open(tmp_path / 'wd' / 'results.json') as f:
        results = json.load(f)
    assert 0 <= results['bbox_mAP'] <= 1 and 0 <= results['mIoU'] <= 1
    assert set(results['models']) == {'retinanet', 'semfpn'}
    names = sorted(osp.basename(p) for p in results['pictures'])
    assert names == ['retinanet_val_predictions.png',
                     'semfpn_val_predictions.png', 'training_curves.png']
    for path in results['pictures']:
        assert path in out
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        assert os.stat(path).st_size > 10_000  # a drawn figure, not a stub

    # Running it again reuses the data, the training and the evaluation.
    again = run_demo(tmp_path)
    assert 'trained already' in again and 'evaluated already' in again
    assert 'Epoch(train)' not in again
    with open(tmp_path / 'wd' / 'results.json') as f:
        assert json.load(f)['mIoU'] == results['mIoU']


def test_reuse_and_resume_follow_last_checkpoint(tmp_path, capsys):
    """The demo asks the work dir's ``last_checkpoint`` (what tools/train.py
    resumes from) whether a training is done; no file test of its own."""
    import argparse

    import torch
    demo = load_demo()
    job = demo.JOBS['semfpn']  # --smoke: 2 iterations, iter_2.pth
    assert demo.last_checkpoint(str(tmp_path)) is None
    torch.save({'meta': {}}, tmp_path / 'iter_2.pth')
    # A final file that last_checkpoint does not name (its save was cut
    # short before the hook recorded it) is not a finished training.
    assert not demo.is_last_checkpoint(str(tmp_path),
                                       str(tmp_path / 'iter_2.pth'))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert demo.last_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    args = argparse.Namespace(smoke=True, verbose=False)
    assert demo.train(job, str(tmp_path), str(tmp_path), args) == 0.0
    assert 'trained already' in capsys.readouterr().out


def test_results_written_atomically(tmp_path):
    demo = load_demo()
    target = tmp_path / 'results.json'
    demo.write_json_atomic(str(target), {'mIoU': 0.5})
    demo.write_json_atomic(str(target), {'mIoU': 0.75})
    assert json.loads(target.read_text()) == {'mIoU': 0.75}
    assert os.listdir(tmp_path) == ['results.json']


def test_training_curves_from_scalars(tmp_path):
    from convmlp_mm.analysis import load_scalars, plot_training_curves
    run = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    # 16 iterations per epoch, logged every 4 (as mmengine's LoggerHook).
    lines = [dict(loss=2.0 - i / 10, loss_cls=1.0, iter=i * 4,
                  epoch=(i * 4 - 1) // 16 + 1, step=i * 4)
             for i in range(1, 9)]
    lines.insert(4, {'coco/bbox_mAP': 0.3, 'step': 1})
    lines.append({'coco/bbox_mAP': 0.6, 'step': 2})
    (run / 'scalars.json').write_text(
        '\n'.join(json.dumps(r) for r in lines) + '\n{"loss": 1')  # cut
    train, val = load_scalars(str(tmp_path / 'run'))
    assert [r['iter'] for r in train] == [4, 8, 12, 16, 20, 24, 28, 32]
    assert [(r['iter'], r['coco/bbox_mAP']) for r in val] == [(16, 0.3),
                                                              (32, 0.6)]
    out = plot_training_curves(
        [('RetinaNet', str(tmp_path / 'run'), ['coco/bbox_mAP'])],
        str(tmp_path / 'curves.png'))
    assert os.stat(out).st_size > 10_000


def test_refuses_a_data_folder_with_other_content(tmp_path):
    (tmp_path / 'data' / 'synthetic_coco_smoke').mkdir(parents=True)
    (tmp_path / 'data' / 'synthetic_coco_smoke' / 'mine.txt').write_text('x')
    cmd = [sys.executable, osp.join(REPO, 'tools', 'demo.py'), '--smoke',
           '--work-dir', str(tmp_path / 'wd'), '--data-dir',
           str(tmp_path / 'data')]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert out.returncode != 0
    assert 'refusing to write into it' in out.stderr
