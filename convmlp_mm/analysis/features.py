"""Feature maps of the four ConvMLP levels, the paper's Figure 4
(``tools/analysis/visualize_features.py``).

For each image, one PNG: the input, then levels F1-F4 (strides 4, 8, 16,
32), each reduced to one picture: the channel mean (``mean``, default), the
strongest channel (``max``), the k strongest channels (``topk``) or the first
three principal components as RGB (``pca``). Heat maps are drawn by
mmengine's ``Visualizer.draw_featmap``. Without a checkpoint the backbone has
random weights, and the picture says so.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.visualization import Visualizer

from convmlp_mm.apis import collect_inputs
from convmlp_mm.apis.inputs import read_image
from convmlp_mm.datasets.image_files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from convmlp_mm.errors import InferenceInputError
from convmlp_mm.models import ConvMLP, load_backbone_checkpoint
from convmlp_mm.models.builder import backbone_from

__all__ = [
    'LEVEL_STRIDES', 'MODES', 'draw_grid', 'draw_level', 'extract_features',
    'find_images', 'grid_size', 'load_image', 'strongest_channels',
    'visualize_features'
]

MODES = ('mean', 'max', 'topk', 'pca')
LEVEL_STRIDES = (4, 8, 16, 32)

# Layout of the PNG, in pixels.
MARGIN = 4
TITLE_HEIGHT = 28
CAPTION_HEIGHT = 22


def find_images(paths: Sequence[str]) -> List[str]:
    """Image files named directly or found (not recursively) in folders,
    as :func:`convmlp_mm.apis.collect_inputs` finds them; a video is
    refused."""
    found = collect_inputs(paths)
    for path in found:
        if path.lower().endswith(VIDEO_EXTENSIONS):
            raise InferenceInputError(
                f'{path} is a video; feature maps are drawn for images '
                f'({", ".join(IMAGE_EXTENSIONS)}).')
    return found


def load_image(path: str, shape: Optional[Tuple[int, int]]) -> np.ndarray:
    """BGR uint8 image, resized to ``shape`` (height, width) if given. Read
    as inference reads its inputs: the pixel limit before decoding, and
    :class:`InferenceInputError` naming a file that does not decode."""
    image = mmcv.rgb2bgr(read_image(path))
    if shape is not None:
        image = mmcv.imresize(image, (shape[1], shape[0]))
    return image


@torch.no_grad()
def extract_features(backbone: ConvMLP, image: np.ndarray,
                     norm: dict) -> List[torch.Tensor]:
    """The four levels, each (C, H, W), for one BGR image."""
    pixels = image[..., ::-1] if norm['bgr_to_rgb'] else image
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).float()
    mean = torch.tensor(norm['mean'], dtype=torch.float32)
    std = torch.tensor(norm['std'], dtype=torch.float32)
    tensor = ((tensor - mean) / std).permute(2, 0, 1)[None]
    return [f[0] for f in backbone(tensor)]


def strongest_channels(feature: torch.Tensor, k: int) -> List[int]:
    """Indices of the ``k`` channels with the largest sum."""
    k = min(k, feature.shape[0])
    return torch.topk(feature.sum(dim=(1, 2)), k).indices.tolist()


def draw_level(feature: torch.Tensor, mode: str, topk: int) -> np.ndarray:
    """One level as an RGB picture at the feature map's own resolution
    (``topk``: a mosaic of the k strongest channels)."""
    if mode == 'mean':
        return Visualizer.draw_featmap(feature,
                                       channel_reduction='squeeze_mean')
    if mode == 'max':
        return Visualizer.draw_featmap(feature, channel_reduction='select_max')
    if mode == 'topk':
        # mmengine's own top-k mosaic is a matplotlib figure sized by the
        # feature map, unreadable at 6x8; tile single-channel maps instead,
        # picked by the same criterion (largest sum).
        channels = strongest_channels(feature, topk)
        cols = int(np.ceil(np.sqrt(len(channels))))
        rows = int(np.ceil(len(channels) / cols))
        height, width = feature.shape[1:]
        mosaic = np.full((rows * (height + 1) - 1, cols * (width + 1) - 1, 3),
                         255, dtype=np.uint8)
        for i, channel in enumerate(channels):
            row, col = divmod(i, cols)
            mosaic[row * (height + 1):row * (height + 1) + height,
                   col * (width + 1):col * (width + 1) + width] = \
                Visualizer.draw_featmap(feature[[channel]],
                                        channel_reduction=None, topk=0)
        return mosaic
    if mode == 'pca':
        channels, height, width = feature.shape
        flat = feature.reshape(channels, -1).T.double()
        flat = flat - flat.mean(dim=0)
        # Top-3 right singular vectors = principal axes of the pixels.
        _, _, v = torch.linalg.svd(flat, full_matrices=False)
        proj = (flat @ v[:3].T).T.reshape(-1, height, width)
        if proj.shape[0] < 3:
            proj = torch.cat([proj, proj.new_zeros(3 - proj.shape[0],
                                                   height, width)])
        low = proj.amin(dim=(1, 2), keepdim=True)
        high = proj.amax(dim=(1, 2), keepdim=True)
        rgb = (proj - low) / (high - low).clamp_min(1e-12) * 255
        return rgb.permute(1, 2, 0).round().byte().numpy()
    raise ValueError(f'mode must be one of {", ".join(MODES)}, got {mode!r}.')


def _put_text(canvas: np.ndarray, text: str, x: int, y: int,
              max_width: int, scale: float = 0.45) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    while scale > 0.25 and \
            cv2.getTextSize(text, font, scale, 1)[0][0] > max_width:
        scale -= 0.05
    cv2.putText(canvas, text, (x, y), font, scale, (0, 0, 0), 1, cv2.LINE_AA)


def grid_size(image_shape: Tuple[int, int], panel_width: int) -> Tuple[int,
                                                                       int]:
    """(height, width) of the PNG for an input of ``image_shape``."""
    panel_height = max(1, round(panel_width * image_shape[0] /
                                image_shape[1]))
    return (TITLE_HEIGHT + CAPTION_HEIGHT + panel_height + MARGIN,
            5 * panel_width + 6 * MARGIN)


def draw_grid(image: np.ndarray, features: Sequence[torch.Tensor],
              title: str, mode: str = 'mean', topk: int = 4,
              panel_width: int = 256) -> np.ndarray:
    """The input and the four levels side by side, RGB uint8, with a title
    and a caption per panel."""
    height, width = grid_size(image.shape[:2], panel_width)
    panel_height = height - TITLE_HEIGHT - CAPTION_HEIGHT - MARGIN
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    _put_text(canvas, title, MARGIN, TITLE_HEIGHT - 9, width - 2 * MARGIN,
              0.55)
    panels = [mmcv.bgr2rgb(image)] + [draw_level(f, mode, topk)
                                      for f in features]
    captions = [f'input {image.shape[0]}x{image.shape[1]}'] + [
        f'F{i + 1} /{s} {f.shape[0]}ch {f.shape[1]}x{f.shape[2]}'
        for i, (s, f) in enumerate(zip(LEVEL_STRIDES, features))]
    if mode == 'topk':
        captions[1:] = [
            f'F{i + 1} /{s} ch ' +
            ','.join(map(str, strongest_channels(f, topk)))
            for i, (s, f) in enumerate(zip(LEVEL_STRIDES, features))]
    top = TITLE_HEIGHT + CAPTION_HEIGHT
    for i, (panel, caption) in enumerate(zip(panels, captions)):
        left = MARGIN + i * (panel_width + MARGIN)
        _put_text(canvas, caption, left, top - 6, panel_width)
        # Nearest keeps each feature-map cell visible as a block.
        canvas[top:top + panel_height, left:left + panel_width] = \
            cv2.resize(panel, (panel_width, panel_height),
                       interpolation=cv2.INTER_AREA if i == 0 else
                       cv2.INTER_NEAREST)
    return canvas


def visualize_features(target: str,
              images: Sequence[str],
              out_dir: str,
              checkpoint: Optional[str] = None,
              shape: Optional[Tuple[int, int]] = None,
              mode: str = 'mean',
              topk: int = 4,
              panel_width: int = 256,
              cfg_options: Optional[dict] = None) -> List[Dict[str, object]]:
    """Write ``<out_dir>/<image name>_features.png`` for each image; return
    per image the PNG path, its title and the four level shapes."""
    if mode not in MODES:
        raise ValueError(
            f'mode must be one of {", ".join(MODES)}, got {mode!r}.')
    if mode == 'topk' and topk < 1:
        raise ValueError(f'topk must be at least 1, got {topk}.')
    backbone, norm, name = backbone_from(target, cfg_options,
                                         out_indices=(0, 1, 2, 3))
    backbone.eval()
    if checkpoint:
        load_backbone_checkpoint(backbone, checkpoint)
        weights = f'weights: {osp.basename(checkpoint)}'
    else:
        weights = 'RANDOM WEIGHTS (no checkpoint)'
    os.makedirs(out_dir, exist_ok=True)
    results = []
    for path in find_images(images):
        image = load_image(path, shape)
        features = extract_features(backbone, image, norm)
        title = f'{name}, {weights}, {mode} view'
        grid = draw_grid(image, features, title, mode, topk, panel_width)
        out = osp.join(out_dir,
                       osp.splitext(osp.basename(path))[0] + '_features.png')
        mmcv.imwrite(mmcv.rgb2bgr(grid), out)
        results.append(dict(image=path, png=out, title=title,
                            levels=[list(f.shape) for f in features]))
    return results
