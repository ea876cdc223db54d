# RetinaNet with a ConvMLP backbone, the paper's 1x AdamW schedule (section
# 4.5). Sizes: ../retinanet_convmlp_{s,m,l}_fpn_1x_coco.py set the arch, the
# ImageNet checkpoint and the neck's input widths; this base is ConvMLP-S.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']

custom_imports = dict(imports=['convmlp_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # no ResNet depth/style/... leaking in
        type='ConvMLP',
        arch='s',
        # All four levels, as the original release: RetinaNet's FPN starts at
        # level 1 (stride 8), so the stride-4 level is emitted but not read.
        # Every backbone parameter still trains (level 1 is computed from
        # level 0), so DDP needs no find_unused_parameters.
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_s_imagenet.pth')),
    neck=dict(
        in_channels=[64, 128, 256, 512],
        start_level=1,
        add_extra_convs='on_input',  # P6 from C5, P7 from P6, as upstream
        num_outs=5))

# Paper section 4.5: AdamW lr 1e-4, weight decay 1e-4, no gradient clipping;
# the base's 12 epochs, x0.1 at epochs 8 and 11, 500-iteration linear warm-up
# from 0.001 are kept and restated so the schedule reads in one place.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
# convmlp_mm's loop: a resume continues mid-epoch and skips the used data
# by index (docs/preemption.md).
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=12, val_interval=1)
# 8 GPUs x 2 images; with --auto-scale-lr the lr follows the real batch.
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)

# convmlp_mm.hooks: each checkpoint is renamed into place and only then named
# in last_checkpoint (a kill never leaves --resume a half-written file), and
# training stops at the first NaN/inf loss, before those weights are saved.
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
# SIGTERM/SIGUSR1 save the iteration in flight and exit 75; every
# checkpoint holds the random states (docs/preemption.md).
custom_hooks = [
    dict(type='NonFiniteLossHook'),
    dict(type='RandomStateHook'),
    dict(type='PreemptionHook')
]
