"""convmlp_mm.analysis (parameters and MACs, feature maps, fp32 against
--amp) with the command lines of tools/analysis/get_flops.py, and
convmlp_mm.apis.inference / tools/inference.py, on tiny inputs."""
import json
import os.path as osp

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from convmlp_mm.analysis import (
    amp_loss_curve,
    backbone_complexity,
    model_complexity,
    visualize_features,
)
from convmlp_mm.apis import InferenceInputError, inference
from convmlp_mm.datasets import make_ade20k_dataset

from helpers import REPO, load_tool

RETINANET = osp.join(REPO,
                     'configs/detection/retinanet_convmlp_s_fpn_1x_coco.py')
SEMFPN = osp.join(REPO,
                  'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py')
SHAPES = ('circle', 'square', 'triangle')


def tiny_config(path: str, num_classes: int) -> Config:
    """Our config with a small test scale and a few classes, as a model
    trained on the built-in shapes data has."""
    cfg = Config.fromfile(path)
    pipeline = cfg.test_dataloader.dataset.pipeline
    (resize, ) = [t for t in pipeline if t.type == 'Resize']
    resize.scale = (128, 96)
    if cfg.default_scope == 'mmdet':
        cfg.model.bbox_head.num_classes = num_classes
    else:
        cfg.model.decode_head.num_classes = num_classes
    cfg.model.backbone.init_cfg = None
    return cfg


# The tests of the command lines themselves call their main(argv).
get_flops_tool = load_tool('tools/analysis/get_flops.py')
inference_tool = load_tool('tools/inference.py')


def write_image(path: str, height: int, width: int, seed: int = 0) -> str:
    rng = np.random.RandomState(seed)
    image = np.full((height, width, 3), 90, np.uint8)
    image += rng.randint(0, 20, image.shape).astype(np.uint8)
    cv2.circle(image, (width // 3, height // 2), height // 4, (20, 40, 230),
               -1)
    cv2.rectangle(image, (width // 2, height // 4),
                  (width // 2 + height // 3, height // 4 + height // 3),
                  (230, 200, 30), -1)
    assert mmcv.imwrite(image, path)
    return path


def write_video(path: str, frames: int, height: int, width: int) -> str:
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 5,
                             (width, height))
    for i in range(frames):
        frame = np.full((height, width, 3), 60 + 40 * i, np.uint8)
        cv2.circle(frame, (20 + 10 * i, height // 2), 10, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def save_untrained_checkpoint(cfg: Config, path: str, classes) -> str:
    """An mmengine-style checkpoint (``meta.dataset_meta`` + ``state_dict``)
    of the config's model, as tools/train.py would leave one."""
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        if cfg.default_scope == 'mmdet':
            from mmdet.registry import MODELS
        else:
            from mmseg.registry import MODELS
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    torch.save(dict(meta=dict(dataset_meta=dict(classes=tuple(classes))),
                    state_dict=model.state_dict()), path)
    return path


# ---------------------------------------------------------------- get_flops


@pytest.mark.parametrize('arch,params,macs', [
    ('s', 8.509, 2.399), ('m', 16.896, 3.948), ('l', 41.958, 9.903)])
def test_backbone_macs_match_table3(arch, params, macs):
    result = backbone_complexity(arch, (224, 224))
    assert abs(result['macs'] / 1e9 - macs) < 0.01
    assert round(result['params'] / 1e6, 3) == params


def test_pure_mlp_classifier_matches_table2():
    # Table 2, first row: 7.88M parameters, 1.47 GMACs.
    result = backbone_complexity('s', (224, 224), with_head=True,
                                 type='PureMLP')
    assert round(result['params'] / 1e6, 2) == 7.88
    assert abs(result['macs'] / 1e9 - 1.47) < 0.01
    # The classifier's head is there, with the backbone inside it.
    assert set(result['by_module']) == {'backbone', 'norm', 'head'}


def test_whole_detector_pads_and_splits_backbone():
    cfg = RETINANET
    result = model_complexity(cfg, (70, 90))
    assert result['library'] == 'mmdet'
    assert result['padded_shape'] == [96, 96]  # size_divisor 32
    assert round(result['params'] / 1e6, 2) == 18.74
    assert result['backbone']['params'] == 8508896
    alone = backbone_complexity('s', (96, 96))
    assert result['backbone']['macs'] == alone['macs']
    assert result['macs'] > 2 * result['backbone']['macs']


def test_cli_writes_json_for_backbone_and_segmentor(tmp_path, capsys):
    out = tmp_path / 'flops.json'
    seg = osp.join(REPO,
                   'configs/segmentation/fpn_convmlp_s_512x512_40k_ade20k.py')
    get_flops_tool.main(['s', seg, '--shape', '64', '--json', str(out)])
    printed = capsys.readouterr().out
    assert 'ConvMLP (s)' in printed and 'of which backbone' in printed
    backbone, segmentor = json.loads(out.read_text())
    assert backbone['input_shape'] == [64, 64]
    assert segmentor['library'] == 'mmseg' and segmentor['config'] == seg
    assert round(segmentor['params'] / 1e6, 2) == 12.76
    assert segmentor['backbone']['macs'] == backbone['macs']
    with pytest.raises(SystemExit, match='neither a backbone size'):
        get_flops_tool.main(['xl'])


# ------------------------------------------------------ visualize_features


def test_feature_grid_png_random_weights(tmp_path):
    image = write_image(str(tmp_path / 'shapes.jpg'), 48, 80)
    results = visualize_features(
        's', [image], str(tmp_path / 'out'), shape=(64, 96), panel_width=64)
    (result, ) = results
    assert result['levels'] == [[64, 16, 24], [128, 8, 12], [256, 4, 6],
                                [512, 2, 3]]
    assert 'RANDOM WEIGHTS' in result['title']
    png = mmcv.imread(result['png'])
    # title 28 + caption 22 + panel round(64 * 64 / 96) = 43 + margin 4;
    # five 64-wide panels and six 4-pixel margins.
    assert png.shape == (97, 344, 3)
    assert png[:28].min() < 100  # the title is drawn, dark on white
    # Each level panel is a heat map, not blank.
    assert png[50:93, 72:136].std() > 5


def test_feature_grid_with_detector_checkpoint_any_mode(tmp_path,
                                                        retinanet_files):
    _, checkpoint = retinanet_files
    images = tmp_path / 'images'
    images.mkdir()
    write_image(str(images / 'a.png'), 40, 40, seed=1)
    write_image(str(images / 'b.jpg'), 33, 57, seed=2)
    outputs = {}
    for mode in ('pca', 'topk'):
        results = visualize_features(
            RETINANET, [str(images)], str(tmp_path / mode),
            checkpoint=checkpoint, mode=mode, topk=3, panel_width=40)
        assert [osp.basename(r['png']) for r in results] == \
            ['a_features.png', 'b_features.png']
        assert all('epoch_1.pth' in r['title'] for r in results)
        outputs[mode] = results
    # Own sizes kept (33x57 -> 9x15 at stride 4); all four levels although
    # the RetinaNet config emits only three.
    assert outputs['pca'][1]['levels'][0] == [64, 9, 15]
    assert mmcv.imread(outputs['topk'][1]['png']).shape == \
        (28 + 22 + round(40 * 33 / 57) + 4, 5 * 40 + 6 * 4, 3)


def test_feature_tool_rejects_bad_input(tmp_path):
    with pytest.raises(InferenceInputError, match='Input not found'):
        visualize_features('s', [str(tmp_path / 'none.jpg')],
                                     str(tmp_path))
    with pytest.raises(ValueError, match='mode must be one of'):
        visualize_features('s', [], str(tmp_path), mode='sum')


# --------------------------------------------------------------- inference


@pytest.fixture(scope='module')
def retinanet_files(tmp_path_factory):
    """A 3-class RetinaNet-ConvMLP-S config file and its checkpoint."""
    folder = tmp_path_factory.mktemp('retinanet')
    cfg = tiny_config(RETINANET, len(SHAPES))
    config = str(folder / 'retinanet_convmlp_s_shapes.py')
    cfg.dump(config)
    return config, save_untrained_checkpoint(
        cfg, str(folder / 'epoch_1.pth'), SHAPES)


def test_detection_on_folder_and_video(tmp_path, retinanet_files):
    config, checkpoint = retinanet_files
    folder = tmp_path / 'photos'
    folder.mkdir()
    write_image(str(folder / 'one.jpg'), 60, 90, seed=1)
    write_image(str(folder / 'two.png'), 50, 50, seed=2)
    video = write_video(str(tmp_path / 'clip.mp4'), 2, 48, 64)
    out_dir = str(tmp_path / 'out')
    summary = inference(
        config, checkpoint, [video, str(folder)], out_dir,
        device='cpu', score_thr=0.0, batch_size=2,
        cfg_options={'model.test_cfg.score_thr': 0.0,
                     'model.test_cfg.max_per_img': 5})
    on_disk = json.loads(open(osp.join(out_dir, 'results.json')).read())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary['task'] == 'detection'
    assert summary['classes'] == list(SHAPES)
    entries = summary['results']
    assert [(osp.basename(e['input']), e.get('frame')) for e in entries] == \
        [('clip.mp4', 0), ('clip.mp4', 1), ('one.jpg', None),
         ('two.png', None)]
    for entry, (height, width) in zip(entries, [(48, 64), (48, 64),
                                                (60, 90), (50, 50)]):
        predictions = entry['predictions']
        assert set(predictions) == {'labels', 'label_names', 'scores',
                                    'bboxes', 'num_drawn'}
        assert len(predictions['bboxes']) == len(predictions['scores']) == 5
        assert predictions['num_drawn'] == 5  # score_thr 0 draws all
        assert all(name in SHAPES for name in predictions['label_names'])
        boxes = np.array(predictions['bboxes'])
        assert (boxes >= -1e-3).all()
        assert (boxes[:, [0, 2]] <= width + 1e-3).all()
        assert (boxes[:, [1, 3]] <= height + 1e-3).all()
        if entry.get('frame') is None:
            assert mmcv.imread(entry['vis']).shape == (height, width, 3)
    reader = mmcv.VideoReader(entries[0]['vis'])
    assert (reader.frame_cnt, reader.height, reader.width) == (2, 48, 64)


def test_inference_cli_and_errors(tmp_path, retinanet_files, capsys):
    config, checkpoint = retinanet_files
    image = write_image(str(tmp_path / 'x.jpg'), 40, 56)
    out_dir = str(tmp_path / 'cli')
    summary = inference_tool.main([
        config, checkpoint, image, '--out-dir', out_dir,
        '--device', 'cpu', '--classes', 'a', 'b', 'c'
    ])
    assert summary['classes'] == ['a', 'b', 'c']
    assert osp.isfile(osp.join(out_dir, 'vis', 'x.jpg'))
    assert 'results.json' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='3 classes but 2 class names'):
        inference_tool.main([config, checkpoint, image,
                             '--out-dir', out_dir, '--classes', 'a', 'b'])
    notes = tmp_path / 'notes.txt'
    notes.write_text('not an image')
    with pytest.raises(InferenceInputError, match='neither an image'):
        inference(config, checkpoint, str(notes), out_dir)
    with pytest.raises(FileNotFoundError, match='Checkpoint not found'):
        inference(config, str(tmp_path / 'missing.pth'), image,
                  out_dir)


def test_segmentation_label_maps(tmp_path):
    cfg = tiny_config(SEMFPN, 4)
    checkpoint = save_untrained_checkpoint(
        cfg, str(tmp_path / 'iter_1.pth'), ('background', ) + SHAPES)
    image = write_image(str(tmp_path / 'scene.jpg'), 45, 70)
    summary = inference(cfg, checkpoint, image,
                        str(tmp_path / 'out'), device='cpu')
    assert summary['task'] == 'segmentation'
    (entry, ) = summary['results']
    label_map = mmcv.imread(entry['pred'], flag='unchanged')
    assert label_map.shape == (45, 70)
    assert label_map.max() < 4
    present = entry['predictions']['classes_present']
    assert sum(c['pixels'] for c in present) == 45 * 70
    assert abs(sum(c['fraction'] for c in present) - 1) < 1e-4
    assert {c['label'] for c in present} == set(np.unique(label_map))
    assert mmcv.imread(entry['vis']).shape == (45, 70, 3)


@pytest.mark.e2e
def test_amp_loss_curve_trains_both_precisions(tmp_path):
    """convmlp_mm.analysis.amp_loss_curve (tools/analysis/amp_loss_curve.py):
    two short trainings of the demo's Semantic FPN (fp32 and --amp, same
    seed) and the comparison of their loss curves, on data the test makes."""
    data = make_ade20k_dataset(str(tmp_path / 'ade'), num_train=4,
                               num_val=2, image_size=(96, 64))
    work = tmp_path / 'curve'
    result = amp_loss_curve(
        osp.join(REPO, 'configs/demo/fpn_convmlp_s_demo_shapes.py'),
        osp.join(REPO, 'tools/train.py'), str(work), steps=3, smooth=2,
        data_root=data)
    c = result['comparison']
    assert c['iters'] == [1, 2, 3]
    assert len(c['fp32']) == len(c['amp']) == 3
    # the same data and seed: the first losses differ by bf16 rounding only,
    # and the two runs are not one run reported twice
    assert c['fp32'][0] != c['amp'][0]
    assert abs(c['amp'][0] - c['fp32'][0]) / c['fp32'][0] < 0.05
    assert 'mIoU' in result['validation']['fp32']
    assert 'mIoU' in result['validation']['amp']
    saved = json.loads((work / 'amp_loss_curve.json').read_text())
    assert saved['comparison']['fp32'] == c['fp32']
    assert (work / 'amp_loss_curve.png').stat().st_size > 0
    assert "type='CPUAmpOptimWrapper'" in open(osp.join(
        result['run_dir'], 'amp', 'fpn_convmlp_s_demo_shapes.py')).read()
    assert "CPUAmpOptimWrapper" not in open(osp.join(
        result['run_dir'], 'fp32', 'fpn_convmlp_s_demo_shapes.py')).read()
