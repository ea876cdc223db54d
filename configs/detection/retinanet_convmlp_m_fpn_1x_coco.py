# RetinaNet, ConvMLP-M backbone, 1x schedule on COCO (paper Table 5).
_base_ = './_base_/retinanet_convmlp_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_m_imagenet.pth')),
    # ConvMLP-M widths of levels 0-3 (strides 4, 8, 16, 32).
    neck=dict(in_channels=[64, 128, 256, 512]))
