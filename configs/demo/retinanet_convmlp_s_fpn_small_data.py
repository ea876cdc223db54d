# RetinaNet-ConvMLP-S for a small dataset of your own (tens to a few hundred
# images; docs/own_data.md). The demo config's model, image size and
# optimiser, with a schedule counted in steps instead of epochs: on 10 images
# the demo's 12 epochs are 36 steps, and its decay starts (epoch 6, step 18)
# before its 30-step warm-up ends (bbox mAP 0.29). Here every dataset gets
# the same 240 steps at batch 4:
# warm-up, the full rate for half the run, then a cosine decay. Validated
# every 40 steps and at the last one, so even a shortened run logs bbox_mAP
# for tools/analysis/plot_curves.py.
_base_ = './retinanet_convmlp_s_fpn_demo_shapes.py'

max_iters = 240
# Steps, not passes: the sampler never ends (mmdet's iteration-based
# configs do the same).
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(
    _delete_=True, type='ResumableIterBasedTrainLoop', max_iters=max_iters,
    val_interval=40)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=24),
    dict(type='CosineAnnealingLR', T_max=max_iters // 2, eta_min=1e-6,
         by_epoch=False, begin=max_iters // 2, end=max_iters)
]
default_hooks = dict(
    # Metrics logged at their step (not epoch 0): the curves' x axis.
    logger=dict(interval=10, log_metric_by_epoch=False),
    # The last step is saved whatever the interval (save_last).
    checkpoint=dict(by_epoch=False, interval=40, max_keep_ckpts=1))
log_processor = dict(by_epoch=False, window_size=10)
