"""convmlp_mm.analysis.plot_curves (tools/analysis/plot_curves.py): any
run's scalars.json to a PNG, one panel per key, one line per work dir; an
unknown key or a folder without a run is one error naming it."""
import glob
import json

import cv2
import pytest

from convmlp_mm.analysis import curve, plot_curves
from convmlp_mm.errors import ConfigError

import helpers
from toy_runner import toy_runner


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Two real mmengine runs (toy model, 4 iterations each)."""
    dirs = []
    for name in ('a', 'b'):
        work_dir = tmp_path_factory.mktemp(name)
        toy_runner(work_dir, max_iters=4, interval=4).train()
        dirs.append(str(work_dir))
    return dirs


def test_plots_loss_and_lr_of_two_runs(runs, tmp_path, capsys):
    out = tmp_path / 'curves.png'
    # the command line itself
    tool = helpers.load_tool('tools/analysis/plot_curves.py')
    tool.main([*runs, '--keys', 'loss', 'lr', '--out', str(out)])
    image = cv2.imread(str(out))
    # Two panels side by side: wider than tall.
    assert image is not None and image.shape[1] > image.shape[0]
    assert 'loss, lr of 2 run(s)' in capsys.readouterr().out


def test_curve_is_what_mmengine_logged(runs):
    name, iters, values = curve(runs[0], 'loss')
    (path, ) = glob.glob(f'{runs[0]}/*/vis_data/scalars.json')
    with open(path) as f:
        scalars = [json.loads(line) for line in f]
    assert name == 'loss'
    assert iters == [r['iter'] for r in scalars]
    assert values == [r['loss'] for r in scalars]


def test_unknown_key_and_empty_folder_are_errors(runs, tmp_path, capsys):
    with pytest.raises(ConfigError, match='--keys mAP: no run'):
        plot_curves([runs[0]], ['mAP'], str(tmp_path / 'x.png'))
    with pytest.raises(ConfigError, match='holds no training records'):
        plot_curves([str(tmp_path)], ['loss'], str(tmp_path / 'x.png'))
    # on the command line: one error line, exit status 1
    tool = helpers.load_tool('tools/analysis/plot_curves.py')
    with pytest.raises(SystemExit, match='^error: --keys mAP: no run'):
        tool.main([runs[0], '--keys', 'mAP', '--out',
                   str(tmp_path / 'x.png')])
    assert not (tmp_path / 'x.png').exists()


def test_missing_metric_names_what_the_runs_logged_and_why(runs, tmp_path):
    # A run too short to validate (the issue: a short run logged no
    # bbox_mAP, and plot_curves stopped without saying why).
    with pytest.raises(ConfigError) as error:
        plot_curves(runs, ['loss', 'bbox_mAP'], str(tmp_path / 'x.png'))
    message = str(error.value)
    # The names mmengine wrote for the toy runs (tests/toy_runner.py).
    assert 'they logged data_time, loss, lr, time.' in message
    assert 'train_cfg.val_interval' in message
