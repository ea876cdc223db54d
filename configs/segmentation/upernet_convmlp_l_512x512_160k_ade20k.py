# UperNet, ConvMLP-L backbone, 160k iterations on ADE20K (beyond the
# paper: no accuracy was measured for it).
_base_ = './_base_/upernet_convmlp_512x512_160k_ade20k.py'

model = dict(
    backbone=dict(
        arch='l',
        init_cfg=dict(
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_l_imagenet.pth')),
    # ConvMLP-L widths of levels 0-3 (strides 4-32); the auxiliary head
    # reads level 2.
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
