# RetinaNet-ConvMLP-S trained from scratch on the built-in synthetic shapes
# (COCO format, made by tools/make_dataset.py / `make demo`). Everything the
# model and the AdamW optimiser are comes from the real config; only what a
# 64-image dataset on a CPU needs is changed here: image scale, schedule,
# learning rate with gradient clipping, no ImageNet checkpoint, 3 classes.
_base_ = '../detection/retinanet_convmlp_s_fpn_1x_coco.py'

data_root = 'data/synthetic_coco/'
classes = ('circle', 'square', 'triangle')
metainfo = dict(classes=classes)  # CocoDataset keeps only these categories
img_scale = (256, 192)  # the synthetic images' own size (width, height)

model = dict(
    backbone=dict(init_cfg=None),  # from scratch: no download
    bbox_head=dict(num_classes=len(classes)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# --tta (tools/test.py): mmdet's RetinaNet recipe (retinanet_tta.py: the
# test scale, a smaller and a larger one, each flipped and not, boxes merged
# by NMS) at this config's scale. The base's 1333x800 to 2000x1200 would test
# a model trained at 256x192 at 4 to 8 times its size.
img_scales = [img_scale, (192, 144), (320, 240)]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=s, keep_ratio=True)
             for s in img_scales],
            [dict(type='RandomFlip', prob=1.),
             dict(type='RandomFlip', prob=0.)],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [dict(type='PackDetInputs',
                  meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                             'scale_factor', 'flip', 'flip_direction'))]])
]
# Tiny images: loading in the main process is faster than worker processes
# on a 2-core machine.
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# From scratch at batch 4: 2e-4 with clipping learns; 1e-3 diverged.
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    clip_grad=dict(_delete_=True, max_norm=10, norm_type=2))
max_epochs = 12  # 16 iterations each
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=30),
    # Full rate for half the run, then a cosine decay to the end.
    dict(type='CosineAnnealingLR', T_max=max_epochs // 2, eta_min=1e-6,
         by_epoch=True, begin=max_epochs // 2, end=max_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
default_hooks = dict(
    logger=dict(interval=8),
    checkpoint=dict(interval=2, max_keep_ckpts=1),
    # Pictures (tools/test.py --show-dir): confident boxes only, so that a
    # weaker duplicate does not hide the right label.
    visualization=dict(score_thr=0.5))
log_processor = dict(window_size=8)
randomness = dict(seed=0)
