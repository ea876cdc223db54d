# Semantic FPN-ConvMLP-S trained from scratch on the built-in synthetic
# shapes (ADE20K layout, made by tools/make_dataset.py / `make demo`). Only
# what a 64-image dataset on a CPU needs differs from the real config: crop
# size, schedule, learning rate, no ImageNet checkpoint, 4 classes.
_base_ = '../segmentation/fpn_convmlp_s_512x512_40k_ade20k.py'

data_root = 'data/synthetic_ade20k/'
# The label maps keep ADE20K's convention (0 = "other", shapes 1..3). Real
# ADE20K ignores "other" (reduce_zero_label); here it is the ground under the
# shapes, a class worth learning and scoring, so labels are kept as they are
# and 0 is the class 'background'.
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle'),
    palette=[[40, 40, 40], [230, 60, 60], [60, 180, 75], [70, 110, 240]])
crop_size = (256, 256)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None),  # from scratch: no download
    decode_head=dict(num_classes=4))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(
        type='RandomResize',
        scale=(256, 256),
        ratio_range=(0.75, 1.25),
        keep_ratio=True),
    # No cat_max_ratio: the background fills most crops by design.
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs')
]
# --tta (tools/test.py): mmseg's ADE20K tta_pipeline from the base, kept:
# scale factors 0.5 to 1.75 of each image's size (the built-in images are
# 256x256, the test scale), flipped and not. The tiny model of
# tests/data/configs/fpn_tiny_learns_shapes.py: mIoU 90.96, 87.34 without.

# BaseSegDataset: ADE20KDataset would map these names onto its 150 classes.
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline,
        **dataset))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline,
        **dataset))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=4e-4),
    clip_grad=dict(_delete_=True, max_norm=10, norm_type=2))
max_iters = 100  # about 6 epochs of the 64 images
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=20),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=25)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=50, max_keep_ckpts=1))
randomness = dict(seed=0)
