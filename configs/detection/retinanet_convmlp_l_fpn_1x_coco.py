# RetinaNet, ConvMLP-L backbone, 1x schedule on COCO (paper Table 5).
_base_ = './_base_/retinanet_convmlp_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_l_imagenet.pth')),
    # ConvMLP-L widths of levels 0-3 (strides 4, 8, 16, 32).
    neck=dict(in_channels=[96, 192, 384, 768]))
