"""Run a ConvMLP detector or segmentor on your own images, folders or videos.

:func:`inference` wraps ``mmdet.apis.DetInferencer`` (RetinaNet, Mask R-CNN)
and ``mmseg.apis.MMSegInferencer`` (Semantic FPN); the config's
``default_scope`` picks one. It draws the predictions with the library's own
visualizer and writes one JSON of all results::

    from convmlp_mm.apis import inference
    summary = inference(
        'configs/demo/retinanet_convmlp_s_fpn_demo_shapes.py',
        'work_dirs/demo/retinanet/epoch_12.pth',
        'data/synthetic_coco/val2017',        # an image, a folder, a video
        out_dir='work_dirs/inference')
    summary['results'][0]['predictions']   # {'labels', 'label_names', ...}

Output layout (``out_dir``)::

    vis/<image name>        drawn predictions (videos: vis/<name>.mp4)
    pred/<image stem>.png   segmentation: the label map (uint8 class ids)
    results.json            everything below, JSON

Checkpoints load through mmengine's ``CheckpointLoader``, which
``convmlp_mm`` routes through ``weights_only=True``, and must fit the model
exactly (``convmlp_mm.models.loading``).
"""
import copy
import itertools
import os.path as osp
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import mmengine
import numpy as np
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from convmlp_mm.apis.inputs import (
    InferenceInputError,
    check_regular_file,
    collect_inputs,
    read_image,
    unique_name,
)
from convmlp_mm.config import (
    check_config,
    checkpoint_classes,
    config_classes,
    draw_iou_threshold,
    loader_datasets,
    model_classes,
    task_of,
)
from convmlp_mm.datasets.image_files import VIDEO_EXTENSIONS
from convmlp_mm.datasets.transforms import CheckedLoadImageFromFile
from convmlp_mm.deploy.export import loss_build_warnings_off
from convmlp_mm.deploy.runtime import OrtNetwork, use_onnxruntime
from convmlp_mm.engine.visualization import (
    detections_to_draw,
    drawn_detections,
)
from convmlp_mm.models.loading import strict_inferencer


def _head_num_classes(model) -> Optional[int]:
    for path in ('bbox_head', 'roi_head.bbox_head', 'decode_head'):
        module = model
        for name in path.split('.'):
            module = getattr(module, name, None)
        if module is not None and hasattr(module, 'num_classes'):
            return int(module.num_classes)
    return None


def _drop_annotation_loading(cfg: Config) -> None:
    # Own images have no annotations; mmdet's test pipelines load them for
    # evaluation ("if you don't have a gt annotation, delete the pipeline").
    dataset = cfg.test_dataloader.dataset
    dataset.pipeline = [
        t for t in dataset.pipeline
        if not str(t.get('type', '')).endswith('LoadAnnotations')
    ]


def _onnx_inferencer(inferencer_cls: type, network: OrtNetwork,
                     cfg: Config) -> type:
    """A subclass of ``DetInferencer`` / ``MMSegInferencer`` whose model
    runs ``network`` in ONNX Runtime. Its class names and palette come from
    the file's metadata (written at export), else the config's test
    dataset; the base class's warnings about random weights and default
    COCO / Cityscapes classes would be false here."""

    def _load_weights_to_model(self, model, checkpoint, config):
        use_onnxruntime(model, network)
        meta = dict(network.dataset_meta or {})
        if not meta.get('classes'):
            meta['classes'] = config_classes(cfg) or ()
        model.dataset_meta = meta

    return type(inferencer_cls.__name__, (inferencer_cls, ),
                {'_load_weights_to_model': _load_weights_to_model})


def build_inferencer(config: Union[str, Config],
                     checkpoint: Optional[str],
                     device: Optional[str] = None,
                     classes: Optional[Sequence[str]] = None,
                     palette: Optional[Union[str, list]] = None,
                     cfg_options: Optional[dict] = None,
                     backend: str = 'pytorch'):
    """A ``DetInferencer`` or ``MMSegInferencer`` for ``config`` with the
    weights of ``checkpoint`` (``None``: random weights, with a warning).
    ``backend='onnxruntime'``: ``checkpoint`` is a ``.onnx`` from
    ``tools/deploy/export_onnx.py``, whose network runs in ONNX Runtime
    (:func:`convmlp_mm.deploy.runtime.use_onnxruntime`).

    Class names (:func:`convmlp_mm.config.model_classes`): the
    checkpoint's ``meta['dataset_meta']`` (saved by mmengine's Runner, in
    the order the model was trained), which ``classes`` may rename but not
    reorder; else ``classes``; else the config's test dataset
    ``metainfo``. A head whose number of classes differs from the names
    found is an error, not a silently wrong legend."""
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(f'Config file not found: {config}')
        cfg = Config.fromfile(config)
    else:
        cfg = copy.deepcopy(config)  # the caller's config stays as it was
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if backend not in ('pytorch', 'onnxruntime'):
        raise ValueError(f'backend must be "pytorch" or "onnxruntime", got '
                         f'{backend!r}.')
    onnx_path = None
    if backend == 'onnxruntime':
        onnx_path, checkpoint = checkpoint, None
        if onnx_path is None or not osp.isfile(onnx_path):
            raise FileNotFoundError(
                f'ONNX model not found: {onnx_path} (write one with '
                'tools/deploy/export_onnx.py)')
    if checkpoint is not None and not checkpoint.startswith(
            ('http://', 'https://')) and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'Checkpoint not found: {checkpoint} (a .pth saved by '
            f'tools/train.py, e.g. work_dirs/<name>/epoch_12.pth)')
    task = task_of(cfg)
    check_config(cfg)  # typos and neck widths, before the model is built
    # The backbone's ImageNet init_cfg is for training; inference loads the
    # whole model from ``checkpoint`` and must not download anything.
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None

    # The pictures are drawn and saved here (vis/), not by a backend; a
    # LocalVisBackend without save_dir only warns.
    if cfg.get('visualizer') is not None:
        cfg.visualizer.vis_backends = None
    # A config a training wrote (work_dirs/<run>/<config>.py) loads images
    # with CheckedLoadImageFromFile; the inferencers look for upstream's
    # LoadImageFromFile to put their own loader in its place.
    for _, dataset in loader_datasets(cfg, ('test_dataloader', )):
        for step in dataset.get('pipeline') or []:
            if step.get('type') == CheckedLoadImageFromFile.__name__:
                step['type'] = 'LoadImageFromFile'

    # The class names the weights' file records (checkpoint meta, ONNX
    # metadata), before the inferencers put their defaults in their place.
    recorded = []
    network = OrtNetwork(onnx_path) if onnx_path is not None else None
    if network is not None:
        recorded.append(checkpoint_classes(
            dict(dataset_meta=network.dataset_meta or {}), onnx_path))

    def make(inferencer_cls: type) -> type:
        if network is not None:
            made = _onnx_inferencer(inferencer_cls, network, cfg)
        else:
            strict = strict_inferencer(inferencer_cls, checkpoint)

            def _load_weights_to_model(self, model, loaded, model_cfg):
                recorded.append(checkpoint_classes(
                    (loaded or {}).get('meta'), checkpoint))
                strict._load_weights_to_model(self, model, loaded, model_cfg)

            made = type(inferencer_cls.__name__, (strict, ),
                        {'_load_weights_to_model': _load_weights_to_model})

        def _init_collate(self, cfg: Config):
            # Without a collate_fn in the config the base class ends at
            # pseudo_collate, after searching a "function" registry that
            # mmdet does not have, with a warning.
            if cfg.test_dataloader.get('collate_fn') is None:
                return pseudo_collate
            return made._init_collate(self, cfg)

        return type(inferencer_cls.__name__, (made, ),
                    {'_init_collate': _init_collate})

    if task == 'detection':
        from mmdet.apis import DetInferencer
        _drop_annotation_loading(cfg)
        inferencer = make(DetInferencer)(
            model=cfg, weights=checkpoint, device=device,
            palette=palette or 'none', show_progress=False)
    else:
        from mmengine.model import revert_sync_batchnorm
        from mmseg.apis import MMSegInferencer
        with loss_build_warnings_off():
            # Class names and palette are set below, checked against the
            # head: mmseg's own check of classes asserts with no message.
            inferencer = make(MMSegInferencer)(
                model=cfg, weights=checkpoint, device=device)
        # SyncBN needs a process group; in eval mode BN computes the same.
        inferencer.model = revert_sync_batchnorm(inferencer.model)

    num_classes = _head_num_classes(inferencer.model)
    meta = inferencer.model.dataset_meta
    # The one rule (convmlp_mm.config.classes): the file's recorded names,
    # which --classes may rename but not reorder, else the config's.
    chosen = model_classes(recorded[0] if recorded else None,
                           config_classes(cfg), classes, num_classes,
                           onnx_path or checkpoint or 'the model')
    if num_classes is not None and len(chosen) != num_classes:
        raise ValueError(
            f'The model predicts {num_classes} classes but {len(chosen)} '
            f'class names were found (checkpoint meta, then the config\'s '
            f'test_dataloader.dataset.metainfo); pass classes=[...] '
            f'(--classes) with {num_classes} names.')
    colours = palette if palette is not None else meta.get('palette')
    if task == 'segmentation':
        if colours is None or isinstance(colours, str) or \
                len(colours) != len(chosen):
            colours = _segmentation_palette(len(chosen))
    elif colours is None or (not isinstance(colours, str)
                             and len(colours) != len(chosen)):
        colours = 'random'
    meta = dict(meta, classes=chosen, palette=colours)
    inferencer.model.dataset_meta = meta
    if task == 'segmentation':
        inferencer.visualizer.set_dataset_meta(classes=chosen,
                                               palette=colours)
    else:
        inferencer.visualizer.dataset_meta = meta
    inferencer.show_progress = False  # progress is per chunk here
    return inferencer, task


def _segmentation_palette(num_classes: int) -> List[List[int]]:
    # Fixed seed: the same classes get the same colours in every run.
    rng = np.random.RandomState(42)
    return rng.randint(0, 255, size=(num_classes, 3)).tolist()


def _is_video(path: str) -> bool:
    return path.lower().endswith(VIDEO_EXTENSIONS)


def _video_frames(path: str) -> Tuple[mmcv.VideoReader, Iterator]:
    try:
        reader = mmcv.VideoReader(path)
    except AssertionError:  # mmcv asserts the capture opened
        raise InferenceInputError(
            f'{path} does not open as a video.') from None
    if reader.frame_cnt == 0 and reader.width == 0:
        raise InferenceInputError(f'Cannot read frames from the video {path}.')
    return reader, iter(reader)


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _detection_record(prediction: dict, class_names: Sequence[str],
                      drawn: Sequence[int]) -> dict:
    labels = prediction.get('labels', [])
    record = dict(
        labels=labels,
        label_names=[class_names[i] for i in labels],
        scores=prediction.get('scores', []),
        bboxes=prediction.get('bboxes', []),
        num_drawn=len(drawn))
    if 'masks' in prediction:
        record['masks'] = prediction['masks']  # COCO RLE, as mmdet writes
    return record


def _segmentation_record(label_map: np.ndarray,
                         class_names: Sequence[str]) -> dict:
    ids, counts = np.unique(label_map, return_counts=True)
    total = float(label_map.size)
    return dict(
        height=int(label_map.shape[0]),
        width=int(label_map.shape[1]),
        classes_present=[
            dict(label=int(i),
                 name=class_names[i] if i < len(class_names) else str(i),
                 pixels=int(c), fraction=round(c / total, 6))
            for i, c in zip(ids.tolist(), counts.tolist())
        ])


def _predict(inferencer, task: str, inputs: list, batch_size: int) -> list:
    """Data samples for a list of image paths or BGR arrays."""
    kwargs = dict(no_save_vis=True, no_save_pred=True) \
        if task == 'detection' else {}
    samples = inferencer(inputs, batch_size=batch_size,
                         return_datasamples=True, **kwargs)
    if task == 'detection':
        samples = samples['predictions']
    # MMSegInferencer unwraps a single result.
    return samples if isinstance(samples, list) else [samples]


def _draw(inferencer, task: str, rgb: np.ndarray, sample,
          drawn: Optional[np.ndarray] = None) -> np.ndarray:
    """The library's visualizer on the RGB image (the inferencers would draw
    an array input as if it were RGB, but the model reads arrays as BGR);
    detection: only the instances ``drawn`` (:func:`drawn_detections`), in
    that order."""
    kwargs = {}
    if task == 'detection':
        sample = detections_to_draw(sample, drawn, *rgb.shape[:2])
        kwargs = dict(pred_score_thr=-1.0)  # already chosen
    inferencer.visualizer.add_datasample(
        'prediction', rgb, sample, draw_gt=False, draw_pred=True, show=False,
        **kwargs)
    return inferencer.visualizer.get_image()


def inference(config: Union[str, Config],
              checkpoint: Optional[str],
              inputs: Union[str, Sequence[str]],
              out_dir: str,
              device: Optional[str] = None,
              score_thr: float = 0.3,
              batch_size: int = 1,
              classes: Optional[Sequence[str]] = None,
              palette: Optional[Union[str, list]] = None,
              cfg_options: Optional[dict] = None,
              backend: str = 'pytorch') -> Dict:
    """Run ``config`` with ``checkpoint`` on images, folders or videos.

    Args:
        config: A detector (mmdet) or segmentor (mmseg) config, path or
            :class:`Config`.
        checkpoint: A ``.pth`` of that model, e.g. from ``tools/train.py``;
            ``None`` runs random weights (with a warning, recorded in JSON).
        inputs: Image file(s), folder(s) of images, video file(s).
        out_dir: Where ``vis/``, ``pred/`` and ``results.json`` go.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``; default: CUDA if any.
        score_thr: Detection: smallest score drawn. Of boxes overlapping
            by more than the config's NMS IoU (``draw_iou_thr``) only the
            higher-scored one is drawn (:func:`drawn_detections`). The JSON
            keeps every prediction with its score (``num_drawn`` counts the
            drawn ones).
        batch_size: Images per forward pass.
        classes: Class names, renaming the checkpoint's (in its order).
        palette: Colours (a list of RGB triples) or, for detection, one of
            mmdet's palette names (``'random'``, ``'coco'``...).
        cfg_options: Config overrides, e.g.
            ``{'model.test_cfg.score_thr': 0.1}``.
        backend: ``'pytorch'``, or ``'onnxruntime'`` with ``checkpoint``
            a ``.onnx`` exported from ``config`` (docs/deployment.md).

    Returns:
        The content of ``results.json``: ``task``, ``config``,
        ``checkpoint``, ``classes``, ``score_thr``, ``draw_iou_thr``,
        ``json`` (its path) and
        ``results``, one entry per image or video frame with ``input``,
        ``frame`` (videos), ``vis`` and ``predictions``. Detection
        predictions: ``labels``, ``label_names``, ``scores``, ``bboxes``
        (x1, y1, x2, y2 in input pixels), ``masks`` (Mask R-CNN, COCO RLE),
        ``num_drawn``. Segmentation: ``pred`` (label-map PNG path) and
        ``predictions`` with ``height``, ``width`` and ``classes_present``
        (label, name, pixels, fraction). ``failures``: the inputs that
        could not be read (special files, truncated or undecodable images,
        unreadable videos), each with ``input`` and ``error``; the others
        are still processed. Outputs are named after the input's file name,
        with ``_1``, ``_2``... when two inputs share one.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be at least 1, got {batch_size}.')
    paths = collect_inputs(inputs)
    if checkpoint is None:
        warnings.warn('convmlp_mm.apis.inference: no checkpoint, the '
                      'predictions come from random weights.')
    inferencer, task = build_inferencer(config, checkpoint, device, classes,
                                        palette, cfg_options, backend)
    class_names = list(inferencer.model.dataset_meta['classes'])
    iou_thr = draw_iou_threshold(inferencer.cfg)
    vis_dir = osp.join(out_dir, 'vis')
    pred_dir = osp.join(out_dir, 'pred')
    mmengine.mkdir_or_exist(vis_dir)
    if task == 'segmentation':
        mmengine.mkdir_or_exist(pred_dir)

    def select(sample) -> Optional[np.ndarray]:
        return drawn_detections(sample.pred_instances, score_thr, iou_thr) \
            if task == 'detection' else None

    def record(sample, source: str, stem: str, vis: str,
               drawn: Optional[np.ndarray], frame: Optional[int] = None
               ) -> dict:
        entry = dict(input=source)
        if frame is not None:
            entry['frame'] = frame
        entry['vis'] = vis
        if task == 'detection':
            entry['predictions'] = _detection_record(
                inferencer.pred2dict(sample), class_names, drawn)
        else:
            label_map = sample.pred_sem_seg.data[0].cpu().numpy().astype(
                np.uint8)
            entry['pred'] = osp.join(pred_dir, stem + '.png')
            mmcv.imwrite(label_map, entry['pred'])
            entry['predictions'] = _segmentation_record(label_map,
                                                        class_names)
        return entry

    def run_images(chunk: List[str]) -> None:
        pixels = {}
        for path in chunk:
            try:
                pixels[path] = read_image(path)
            except InferenceInputError as exc:
                failures.append(dict(input=path, error=str(exc)))
        chunk = [p for p in chunk if p in pixels]
        if not chunk:
            return
        samples = _predict(inferencer, task, chunk, batch_size)
        for path, sample in zip(chunk, samples):
            drawn = select(sample)
            picture = _draw(inferencer, task, pixels.pop(path), sample,
                            drawn)
            name = osp.basename(path)
            # Two inputs of one name (other folders, or x.jpg and x.png)
            # get their own outputs.
            stem = unique_name(osp.splitext(name)[0], used_stems)
            vis = osp.join(vis_dir, stem + osp.splitext(name)[1])
            mmcv.imwrite(mmcv.rgb2bgr(picture), vis)
            results.append(record(sample, path, stem, vis, drawn))

    def run_video(path: str) -> None:
        check_regular_file(path)  # a FIFO named x.mp4 would block
        reader, frames = _video_frames(path)
        stem = unique_name(osp.splitext(osp.basename(path))[0], used_stems)
        vis = osp.join(vis_dir, stem + '.mp4')
        writer = None
        index = 0
        try:
            for chunk in _chunks(frames, batch_size):
                samples = _predict(inferencer, task, chunk, batch_size)
                for frame, sample in zip(chunk, samples):
                    drawn = select(sample)
                    picture = _draw(inferencer, task, mmcv.bgr2rgb(frame),
                                    sample, drawn)
                    if writer is None:
                        writer = cv2.VideoWriter(
                            vis, cv2.VideoWriter_fourcc(*'mp4v'),
                            reader.fps or 25,
                            (picture.shape[1], picture.shape[0]))
                    writer.write(mmcv.rgb2bgr(picture))
                    results.append(
                        record(sample, path, f'{stem}_{index:06d}', vis,
                               drawn, frame=index))
                    index += 1
        finally:
            if writer is not None:
                writer.release()
        if index == 0:
            raise InferenceInputError(f'The video {path} has no frames.')

    results: List[dict] = []
    failures: List[dict] = []  # inputs reported and skipped
    used_stems: set = set()
    # In the order given; consecutive images share batches.
    for is_video, group in itertools.groupby(paths, key=_is_video):
        if is_video:
            for path in group:
                try:
                    run_video(path)
                except InferenceInputError as exc:
                    failures.append(dict(input=path, error=str(exc)))
        else:
            for chunk in _chunks(group, batch_size):
                run_images(chunk)

    summary = dict(
        task=task,
        config=config if isinstance(config, str) else config.filename,
        checkpoint=checkpoint,
        classes=class_names,
        score_thr=score_thr if task == 'detection' else None,
        draw_iou_thr=iou_thr if task == 'detection' else None,
        json=osp.join(out_dir, 'results.json'),
        results=results,
        failures=failures)
    mmengine.dump(summary, summary['json'], indent=2)
    return summary
