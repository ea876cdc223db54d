"""Briefly trained models on the built-in data, exported to ONNX: a
RetinaNet and a Semantic FPN (demo configs), one iteration of
tools/train.py each (batch 4) on tiny images, shared by the tests."""
import os.path as osp

import pytest

from convmlp_mm.datasets import make_ade20k_dataset, make_coco_dataset

from tools_run import explain, python_tool, run

RETINANET = 'configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py'
SEMFPN = 'configs/demo/fpn_convmlp_s_demo_shapes.py'
MASKRCNN = 'configs/demo/maskrcnn_convmlp_s_fpn_demo_shapes.py'
# The synthetic images (width, height) and the (H, W) the graphs are traced
# at: the network input of a 128x96 picture at the demo's test scale.
COCO_SIZE, ADE_SIZE = (128, 96), (128, 128)
RETINANET_TRACE, SEMFPN_TRACE = (96, 128), (128, 128)


def _train(config, data_root, work_dir, options, tmp_path):
    proc = run(python_tool('train.py', config, '--data-root', data_root,
                           '--work-dir', work_dir, '--cfg-options',
                           *options), tmp_path, timeout=600)
    assert proc.returncode == 0, explain(proc)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def _export(config, checkpoint, out, shape, tmp_path):
    proc = run([*python_tool('deploy/export_onnx.py', config, checkpoint,
                             out, '--shape', *map(str, shape))],
               tmp_path, timeout=600)
    assert proc.returncode == 0, explain(proc)
    return out, proc.stdout


@pytest.fixture(scope='module')
def deployed(tmp_path_factory):
    """Data roots, checkpoints and exported graphs of both models."""
    tmp = tmp_path_factory.mktemp('deploy')
    coco = make_coco_dataset(str(tmp / 'coco'), num_train=4, num_val=4,
                             image_size=COCO_SIZE)
    ade = make_ade20k_dataset(str(tmp / 'ade'), num_train=4, num_val=4,
                              image_size=ADE_SIZE)
    common = ['param_scheduler=[]', 'default_hooks.logger.interval=1']
    ret_ckpt = _train(RETINANET, coco, str(tmp / 'ret'), [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1',
        f'train_dataloader.dataset.pipeline.2.scale={COCO_SIZE}'.replace(
            ' ', '')] + common, tmp)
    seg_ckpt = _train(SEMFPN, ade, str(tmp / 'seg'), [
        'train_cfg.max_iters=1', 'train_cfg.val_interval=10',
        'default_hooks.checkpoint.interval=1',
        'train_dataloader.dataset.pipeline.2.scale=(128,128)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        'model.data_preprocessor.size=(64,64)'] + common, tmp)
    ret_onnx, ret_out = _export(RETINANET, ret_ckpt, str(tmp / 'ret.onnx'),
                                RETINANET_TRACE, tmp)
    seg_onnx, seg_out = _export(SEMFPN, seg_ckpt, str(tmp / 'seg.onnx'),
                                SEMFPN_TRACE, tmp)
    return dict(tmp=tmp, coco=coco, ade=ade, ret_ckpt=ret_ckpt,
                seg_ckpt=seg_ckpt, ret_onnx=ret_onnx, seg_onnx=seg_onnx,
                ret_out=ret_out, seg_out=seg_out)
