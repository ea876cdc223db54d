# Semantic FPN, ConvMLP-M backbone, 40k iterations on ADE20K (paper Table 7).
_base_ = './_base_/fpn_convmlp_512x512_40k_ade20k.py'

model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_m_imagenet.pth')),
    # ConvMLP-M widths of levels 0-3 (strides 4-32).
    neck=dict(in_channels=[64, 128, 256, 512]))
