# Semantic FPN, ConvMLP-L backbone, 40k iterations on ADE20K (paper Table 7).
_base_ = './_base_/fpn_convmlp_512x512_40k_ade20k.py'

model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_l_imagenet.pth')),
    # ConvMLP-L widths of levels 0-3 (strides 4-32).
    neck=dict(in_channels=[96, 192, 384, 768]))
