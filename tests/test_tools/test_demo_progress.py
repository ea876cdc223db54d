"""tools/demo.py's progress and stops: ``step k/N`` with the time spent and
left, mmengine's ETA turned into the demo's, the whole training time of a
resumed training (every run's log), and a Ctrl-C passed on to the running
step as the SIGTERM a training saves on, its exit 75 reported."""
import os
import signal
import sys
import threading

from helpers import load_tool

demo = load_tool('tools/demo.py')


def test_steps_show_their_number_and_an_estimate(capsys):
    progress = demo.Progress([('data', 0.0), ('train', 600.0),
                              ('test', 60.0)])
    progress.start()
    out = capsys.readouterr().out
    assert '== step 1/3: data (0 s so far, about 11 min 00 s left)' in out
    progress.start()
    assert 'step 2/3: train' in capsys.readouterr().out
    # Inside the training its ETA replaces the step's estimate.
    line = ('12/04 12:00:00 - mmengine - INFO - Iter(train) [10/100] '
            'lr: 1e-4  eta: 0:02:05  time: 1.2')
    assert progress.eta_note(line) == '  [demo: about 3 min 05 s left]'
    assert progress.eta_note('no eta here') == ''


def test_estimates_scale_with_the_speed_of_the_finished_steps():
    progress = demo.Progress([('a', 30.0), ('b', 100.0)])
    progress.start()
    progress.step_started -= 60  # step a took twice its estimate
    progress.start()
    assert 195 <= progress.left() <= 201


def test_training_time_sums_every_run_of_a_resumed_training(tmp_path):
    runs = {'20241204_100000': ('2024/12/04 10:00:00', '2024/12/04 10:01:40'),
            '20241204_110000': ('2024/12/04 11:00:00', '2024/12/04 11:00:50')}
    for stamp, (first, last) in runs.items():
        run = tmp_path / stamp
        run.mkdir()
        (run / f'{stamp}.log').write_text(
            f'{first} - mmengine - INFO - start\nsome config line\n'
            f'{last} - mmengine - INFO - Saving checkpoint\n')
    (tmp_path / 'test').mkdir()  # tools/test.py's runs are not training
    assert demo.training_seconds(str(tmp_path)) == (150.0, 2)


CHILD = '''
import signal, sys, time
def stop(signum, frame):
    print('saving', flush=True)
    sys.exit(75)
signal.signal(signal.SIGTERM, stop)
print('ready', flush=True)
time.sleep(60)
sys.exit(3)
'''


def test_ctrl_c_is_passed_on_as_sigterm_and_exit_75_returned(tmp_path):
    log = tmp_path / 'console.log'
    # The Ctrl-C reaches the demo (the child runs in its own session).
    timer = threading.Timer(3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        code = demo.run_logged([sys.executable, '-c', CHILD], str(log),
                               verbose=True, preemptible=True)
    finally:
        timer.cancel()
    assert code == demo.PREEMPTED
    assert log.read_text().splitlines() == ['ready', 'saving']
    # The demo's own handlers are back.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
