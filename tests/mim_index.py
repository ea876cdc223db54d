"""What `mim search convmlp_mm` must list: the paper's nine models with
their metrics (tests/test_tools/test_mim.py, tests/test_wheel.py)."""
import re

# Paper Tables 5-7 (docs/model_zoo.md): box AP, mask AP, mIoU.
PAPER = {
    'retinanet_convmlp_{}_fpn_1x_coco': {
        'coco/box_ap': ('37.2', '39.4', '40.2')},
    'maskrcnn_convmlp_{}_fpn_1x_coco': {
        'coco/box_ap': ('38.4', '40.6', '41.7'),
        'coco/mask_ap': ('35.7', '37.2', '38.2')},
    'fpn_convmlp_{}_512x512_40k_ade20k': {
        'ade20k/miou': ('35.8', '38.6', '40.0')},
}


def search_blocks(stdout: str) -> dict:
    """``config id`` -> {metric: value} of `mim search` output."""
    blocks = {}
    for block in stdout.split('config id: ')[1:]:
        name, _, body = block.partition('\n')
        blocks[name.strip()] = dict(
            re.findall(r'^(\S+)\s+(\S.*?)\s*$', body, re.M))
    return blocks


def assert_paper_models(stdout: str) -> None:
    blocks = search_blocks(stdout)
    for pattern, metrics in PAPER.items():
        for index, size in enumerate('sml'):
            name = pattern.format(size)
            assert name in blocks, sorted(blocks)
            for key, values in metrics.items():
                assert blocks[name][key] == values[index], (name, key)
