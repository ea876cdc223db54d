# UperNet with a ConvMLP backbone on ADE20K, 160k iterations (beyond the
# paper), with the paper's AdamW poly segmentation schedule (section 4.6).
# Sizes: ../upernet_convmlp_{s,m,l}_512x512_160k_ade20k.py set the arch, the
# ImageNet checkpoint and the heads' input widths; this base is ConvMLP-S.
_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py']

custom_imports = dict(imports=['convmlp_mm'], allow_failed_imports=False)

# SyncBN, as the mmseg base: mmengine's Runner keeps it when training is
# distributed and turns it into plain BN otherwise (convmlp_mm's CPU
# launcher does the same for CPU-only distributed runs).
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    # EncoderDecoder would push this into the backbone as ``pretrained``;
    # the backbone's own init_cfg names the ImageNet checkpoint instead.
    pretrained=None,
    backbone=dict(
        _delete_=True,  # no ResNetV1c depth/dilations/... leaking in
        type='ConvMLP',
        arch='s',
        # UperNet fuses all four levels (strides 4, 8, 16, 32).
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.1,
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://shi-labs.com/projects/convmlp/checkpoints/'
            'convmlp_s_imagenet.pth')),
    decode_head=dict(in_channels=[64, 128, 256, 512], num_classes=150),
    # The auxiliary FCN head reads level 2 (stride 16), as the base does
    # with ResNet's C4 and Swin/ConvNeXt with their third stage.
    auxiliary_head=dict(in_channels=256, num_classes=150))

# Optimizer: the paper's segmentation AdamW (section 4.6: lr 2e-4, weight
# decay 1e-4, poly decay power 0.9 to 0 per iteration), run for the base's
# 160k iterations instead of 40k; random resize + 512x512 crops (the base's
# pipeline).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=160000,
        by_epoch=False)
]
# convmlp_mm's loop: a resume at iteration N starts the sampler there
# instead of loading N batches (docs/preemption.md).
train_cfg = dict(
    type='ResumableIterBasedTrainLoop', max_iters=160000,
    val_interval=16000)
# convmlp_mm.hooks: each checkpoint is renamed into place and only then named
# in last_checkpoint (a kill never leaves --resume a half-written file), and
# training stops at the first NaN/inf loss, before those weights are saved.
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False,
                    interval=16000))
# SIGTERM/SIGUSR1 save the iteration in flight and exit 75; every
# checkpoint holds the random states (docs/preemption.md).
custom_hooks = [
    dict(type='NonFiniteLossHook'),
    dict(type='RandomStateHook'),
    dict(type='PreemptionHook')
]
# 8 GPUs x 2 images (the base has 4 GPUs x 4), the paper's batch of 16; with
# --auto-scale-lr the lr follows the real batch.
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
