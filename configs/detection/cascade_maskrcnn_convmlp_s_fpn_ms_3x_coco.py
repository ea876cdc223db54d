# Cascade Mask R-CNN, ConvMLP-S backbone, 3x multi-scale schedule on COCO
# (beyond the paper: no accuracy was measured for it).
_base_ = './_base_/cascade_maskrcnn_convmlp_fpn_ms_3x_coco.py'

model = dict(
    backbone=dict(
        arch='s',
        init_cfg=dict(
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_s_imagenet.pth')),
    # ConvMLP-S widths of levels 0-3 (strides 4-32).
    neck=dict(in_channels=[64, 128, 256, 512]))
