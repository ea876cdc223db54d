# Cascade Mask R-CNN-ConvMLP-S trained from scratch on the built-in synthetic
# shapes (COCO format with polygon masks). As the Mask R-CNN demo config:
# only what a 64-image dataset on a CPU needs differs from the real config
# (no 3x repeat, one image scale, 3 classes, the demo's schedule).
_base_ = '../detection/cascade_maskrcnn_convmlp_s_fpn_ms_3x_coco.py'

data_root = 'data/synthetic_coco/'
classes = ('circle', 'square', 'triangle')
metainfo = dict(classes=classes)
img_scale = (256, 192)

# A list in a config replaces the base's list, so the three stages are
# written out: mmdet's cascade-mask-rcnn_r50_fpn.py with 3 classes (each
# stage's box coder is finer than the last).
model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(
        bbox_head=[
            dict(
                type='Shared2FCBBoxHead',
                in_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=len(classes),
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=stds),
                reg_class_agnostic=True,
                loss_cls=dict(
                    type='CrossEntropyLoss', use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0,
                               loss_weight=1.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [0.033, 0.033, 0.067, 0.067])
        ],
        mask_head=dict(num_classes=len(classes))))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,  # the base's RepeatDataset: 3x is the real schedule
        type='CocoDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
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
    # Pictures (tools/test.py --show-dir): confident boxes only.
    visualization=dict(score_thr=0.5))
log_processor = dict(window_size=8)
randomness = dict(seed=0)
