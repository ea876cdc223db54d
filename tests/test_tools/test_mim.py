"""mim finds the package and its model index: `mim search convmlp_mm`
lists the paper's nine models with their metrics and `mim list` shows the
package (the index ships in convmlp_mm/.mim/, as mmdet's and mmseg's do;
setup.py copies it there when the package is installed)."""
import re
import subprocess
import sys

from helpers import REPO

# Paper Tables 5-7 (FACTS.md): box AP, mask AP, mIoU.
PAPER = {
    'retinanet_convmlp_{}_fpn_1x_coco': {
        'coco/box_ap': ('37.2', '39.4', '40.2')},
    'maskrcnn_convmlp_{}_fpn_1x_coco': {
        'coco/box_ap': ('38.4', '40.6', '41.7'),
        'coco/mask_ap': ('35.7', '37.2', '38.2')},
    'fpn_convmlp_{}_512x512_40k_ade20k': {
        'ade20k/miou': ('35.8', '38.6', '40.0')},
}


def mim(*args):
    # From the checkout: an editable install's metadata is found there.
    return subprocess.run([sys.executable, '-m', 'mim', *args], cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=180)


def test_mim_search_lists_the_nine_models_with_the_papers_metrics():
    proc = mim('search', 'convmlp_mm')
    assert proc.returncode == 0, proc.stderr[-2000:]
    blocks = {}
    for block in proc.stdout.split('config id: ')[1:]:
        name, _, body = block.partition('\n')
        blocks[name.strip()] = dict(
            re.findall(r'^(\S+)\s+(\S.*?)\s*$', body, re.M))
    for pattern, metrics in PAPER.items():
        for index, size in enumerate('sml'):
            name = pattern.format(size)
            assert name in blocks, sorted(blocks)
            for key, values in metrics.items():
                assert blocks[name][key] == values[index], (name, key)


def test_mim_list_shows_the_package():
    proc = mim('list')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r'^convmlp-mm\s+\d', proc.stdout, re.M), proc.stdout
