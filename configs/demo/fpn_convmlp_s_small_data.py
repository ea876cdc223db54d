# Semantic FPN-ConvMLP-S for a small dataset of your own (docs/own_data.md):
# the demo config's model, crop and optimiser, and, as there, a schedule in
# steps (whatever the number of images): 160 steps at batch 4, warm-up then
# a polynomial decay, validated every 20 steps and at the last one so that
# the curves (tools/analysis/plot_curves.py) have mIoU to plot.
_base_ = './fpn_convmlp_s_demo_shapes.py'

max_iters = 160
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=20),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=20)
default_hooks = dict(
    logger=dict(interval=10),
    # The last step is saved whatever the interval (save_last).
    checkpoint=dict(interval=40, max_keep_ckpts=1))
