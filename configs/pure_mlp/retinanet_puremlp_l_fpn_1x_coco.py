# RetinaNet with the Pure-MLP-L baseline backbone (paper Table 5: 50.1M).
# The PureMLP backbone is ConvMLP-L with the three convolutions of the
# paper's Table 2 ablation taken out: channel-MLP blocks in place of the conv
# stage, Swin's linear patch merging in place of the stride-2 conv
# downsampling, no depthwise conv between the two channel MLPs. Same levels
# and widths, so the neck and heads of the ConvMLP config are kept as they
# are, and so are the other backbone settings (arch, out_indices...).
_base_ = '../detection/retinanet_convmlp_l_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='PureMLP',
        # No Pure-MLP ImageNet weights were released (the ConvMLP ones do not
        # fit this backbone): trained from the release's initialisation
        # unless you point init_cfg=dict(type='Pretrained', checkpoint=...)
        # at a Pure-MLP checkpoint of your own.
        init_cfg=None))
