# UperNet, ConvMLP-M backbone, 160k iterations on ADE20K (beyond the
# paper: no accuracy was measured for it).
_base_ = './_base_/upernet_convmlp_512x512_160k_ade20k.py'

model = dict(
    backbone=dict(
        arch='m',
        init_cfg=dict(
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_m_imagenet.pth')),
    # ConvMLP-M widths of levels 0-3 (strides 4-32); the auxiliary head
    # reads level 2.
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256))
