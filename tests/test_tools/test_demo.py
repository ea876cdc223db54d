"""The demo's whole path (``tools/demo.py --smoke``: a few iterations on tiny
data) through the real configs, tools/train.py and tools/test.py."""
import json
import os
import os.path as osp

import pytest

from helpers import load_tool
from tools_run import python_tool, run


def load_demo():
    return load_tool('tools/demo.py')


def run_demo(tmp_path, *extra):
    out = run(python_tool('demo.py', '--smoke', '--work-dir',
                          str(tmp_path / 'wd'), '--data-dir',
                          str(tmp_path / 'data'), *extra), tmp_path,
              timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.mark.e2e
def test_smoke_demo_end_to_end_and_its_accuracy_gate(tmp_path, capsys,
                                                      monkeypatch):
    """The smoke run checks the path (its gate is off); then the demo's
    gate proper, on the smoke run's models (trained for 1 epoch / 2
    iterations: they have not learned): the same work dir, without
    --smoke, each job's last step being the smoke one, is reused (trained
    and evaluated already) and must miss the targets: exit 1 and its
    warning line."""
    out = run_demo(tmp_path)
    # mmengine's progress lines come through, then the table and the paths.
    assert 'Epoch(train) [1][2/2]' in out and 'Iter(train) [2/2]' in out
    assert 'eta:' in out and 'loss:' in out
    assert '| bbox_mAP' in out and '| mIoU' in out
    with open(tmp_path / 'wd' / 'results.json') as f:
        results = json.load(f)
    assert results['smoke'] is True and results['passed'] is False
    assert set(results['models']) == {'retinanet', 'semfpn'}
    names = sorted(osp.basename(p) for p in results['pictures'])
    assert names == ['retinanet_val_predictions.png',
                     'semfpn_val_predictions.png', 'training_curves.png']
    for path in results['pictures']:
        assert path in out
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        assert os.stat(path).st_size > 10_000  # a drawn figure, not a stub

    assert 'all targets reached' not in out
    assert 'WARNING: a target was missed' not in out

    demo = load_demo()
    smoke_step = demo.final_step
    make_data = demo.make_data
    monkeypatch.setattr(demo, 'final_step',
                        lambda job, smoke: smoke_step(job, True))
    monkeypatch.setattr(demo, 'make_data',
                        lambda data_dir, smoke: make_data(data_dir, True))
    capsys.readouterr()
    code = demo.main(['--work-dir', str(tmp_path / 'wd'), '--data-dir',
                      str(tmp_path / 'data')])
    again = capsys.readouterr().out
    assert 'trained already' in again and 'evaluated already' in again
    assert 'Epoch(train)' not in again
    assert code == 1, again[-3000:]
    assert 'WARNING: a target was missed (see the table)' in again
    assert '| bbox_mAP' in again and ' NO ' in again
    with open(tmp_path / 'wd' / 'results.json') as f:
        gated = json.load(f)
    assert gated['smoke'] is False and gated['passed'] is False
    assert gated['mIoU'] == results['mIoU']


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
    demo.train(job, str(tmp_path), str(tmp_path), args)
    # No training was started (it would fail: no data, no config options).
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
    out = run(python_tool('demo.py', '--smoke', '--work-dir',
                          str(tmp_path / 'wd'), '--data-dir',
                          str(tmp_path / 'data')), tmp_path, timeout=120)
    assert out.returncode != 0
    assert 'refusing to write into it' in out.stderr
