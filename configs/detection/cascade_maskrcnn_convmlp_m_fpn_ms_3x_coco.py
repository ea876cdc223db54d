# Cascade Mask R-CNN, ConvMLP-M backbone, 3x multi-scale schedule on COCO
# (beyond the paper: no accuracy was measured for it).
_base_ = './_base_/cascade_maskrcnn_convmlp_fpn_ms_3x_coco.py'

model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_m_imagenet.pth')),
    # ConvMLP-M widths of levels 0-3 (strides 4-32).
    neck=dict(in_channels=[64, 128, 256, 512]))
