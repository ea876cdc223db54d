# Cascade Mask R-CNN with a ConvMLP backbone, mmdet's 3x multi-scale schedule
# (not in the paper; the head backbone projects of the time give). Sizes:
# ../cascade_maskrcnn_convmlp_{s,m,l}_fpn_ms_3x_coco.py set the arch, the
# ImageNet checkpoint and the neck's input widths; this base is ConvMLP-S.
_base_ = ['mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_ms-3x_coco.py']

custom_imports = dict(imports=['convmlp_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # no ResNet depth/style/... leaking in
        type='ConvMLP',
        arch='s',
        # All four levels (strides 4, 8, 16, 32) feed the FPN, as in Mask
        # R-CNN: the RPN and the three cascade stages read strides 4-64/4-32.
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_s_imagenet.pth')),
    neck=dict(in_channels=[64, 128, 256, 512], num_outs=5))

# Optimizer: the paper's detection AdamW (section 4.5: lr 1e-4, weight decay
# 1e-4, no gradient clipping), which trained the release's RetinaNet and Mask
# R-CNN. Schedule: the base's 3x, kept and restated: the training set
# repeated 3 times (RepeatDataset) for 12 epochs = 36 COCO epochs, lr x0.1
# at epochs 9 and 11 (27 and 33 COCO epochs), 500-iteration linear warm-up
# from 0.001, multi-scale training (shorter side 640-800 at 1333 long).
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
        milestones=[9, 11],
        gamma=0.1)
]
# convmlp_mm's loop: a resume continues mid-epoch and skips the used data
# by index (docs/preemption.md).
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=12, val_interval=1)
# 8 GPUs x 2 images; with --auto-scale-lr the lr follows the real batch.
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
# The base's evaluator scores boxes only; masks as in Mask R-CNN too.
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator

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
