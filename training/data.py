"""Datasets: Fashion-MNIST from its IDX files, an ImageNet-style folder of class folders
(decoded with Pillow), and a seeded synthetic set for tests.

The IDX readers and `preprocess` need only numpy (the `eval` command uses them without
PyTorch); the torch pieces are imported inside the functions that need them.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FASHION_MNIST_DIR = Path(os.environ.get("XNORNET_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_HINT = (
    "Fashion-MNIST IDX files not found in {dir} (install Debian's 'dataset-fashion-mnist' "
    "package, or set XNORNET_FASHION_MNIST to a folder holding "
    "{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz])"
)
FMNIST_LABELS = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class DatasetMissing(FileNotFoundError):
    """A dataset that is not installed on this machine."""


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """An IDX file (optionally gzip-compressed) as a numpy array."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack_from(">HBB", data, 0)
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    count = int(np.prod(dims))
    start = 4 + 4 * ndim
    if len(data) != start + count:
        raise ValueError(f"{path}: {len(data) - start} data bytes for dims {dims}")
    return np.frombuffer(data, np.uint8, count, start).reshape(dims)


def _idx_path(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).exists():
            return root / name
    raise DatasetMissing(FASHION_MNIST_HINT.format(dir=root))


def fashion_mnist_available(root: str | os.PathLike[str] | None = None) -> bool:
    try:
        for split in ("train", "t10k"):
            _idx_path(Path(root or FASHION_MNIST_DIR), f"{split}-images-idx3-ubyte")
            _idx_path(Path(root or FASHION_MNIST_DIR), f"{split}-labels-idx1-ubyte")
    except DatasetMissing:
        return False
    return True


def load_fashion_mnist(
    split: str, root: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) of split 'train' (60k) or 'test' (10k)."""
    base = Path(root or FASHION_MNIST_DIR)
    stem = {"train": "train", "test": "t10k", "t10k": "t10k"}[split]
    images = read_idx(_idx_path(base, f"{stem}-images-idx3-ubyte"))
    labels = read_idx(_idx_path(base, f"{stem}-labels-idx1-ubyte")).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{base}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def synthetic(n: int, seed: int = 0, classes: int = 10, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """A learnable seeded toy set of grayscale images: each class is a noisy fixed pattern."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 256, (classes, size, size))
    labels = rng.integers(0, classes, n)
    noise = rng.normal(0, 40, (n, size, size))
    return np.clip(protos[labels] + noise, 0, 255).astype(np.uint8), labels.astype(np.int64)


def preprocess(
    pixels: np.ndarray, scale: float, mean: tuple[float, ...], std: tuple[float, ...]
) -> np.ndarray:
    """uint8 NCHW (or NHW for one channel) -> float32 `(pixel * scale - mean[c]) / std[c]`, each
    step in float32, the way the service and the model file's input spec define it."""
    x = np.asarray(pixels)
    if x.ndim == 3:
        x = x[:, None]
    x = x.astype(np.float32) * np.float32(scale)
    c = x.shape[1]
    m = np.array([mean[i] if i < len(mean) else 0.0 for i in range(c)], np.float32).reshape(1, c, 1, 1)
    s = np.array([std[i] if i < len(std) else 1.0 for i in range(c)], np.float32).reshape(1, c, 1, 1)
    return ((x - m) / s).astype(np.float32)


# ---------------------------------------------------------------------------------------
# ImageNet-style folders: root/<class>/<image>.


def list_image_folder(root: str | os.PathLike[str]) -> tuple[list[str], list[tuple[str, int]]]:
    """(sorted class names, [(path, class index)]) of a folder of class folders."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetMissing(f"{base} is not a folder of class folders")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    items = [
        (str(f), i)
        for i, c in enumerate(classes)
        for f in sorted((base / c).rglob("*"))
        if f.suffix.lower() in IMAGE_EXTS and f.is_file()
    ]
    if not items:
        raise DatasetMissing(f"{base}: no images in class folders")
    return classes, items


def load_image(
    path: str,
    resize_size: int,
    crop: int,
    *,
    color: str = "rgb",
    train: bool = False,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Decode with Pillow, resize the shorter side to resize_size, crop crop x crop (random with
    a random horizontal flip when training, else centered): uint8 CHW."""
    from PIL import Image

    with Image.open(path) as src:
        img = src.convert("L" if color == "gray" else "RGB")
        w, h = img.size
        s = resize_size / min(w, h)
        nw, nh = max(crop, round(w * s)), max(crop, round(h * s))
        img = img.resize((nw, nh), Image.Resampling.BILINEAR)
        if train and rng is not None:
            x0, y0 = int(rng.integers(0, nw - crop + 1)), int(rng.integers(0, nh - crop + 1))
        else:
            x0, y0 = (nw - crop) // 2, (nh - crop) // 2
        img = img.crop((x0, y0, x0 + crop, y0 + crop))
        if train and rng is not None and rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = np.asarray(img, np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@dataclass
class ImageFolderSpec:
    root: str
    resize_size: int
    crop: int
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    color: str = "rgb"


def image_folder_dataset(spec: ImageFolderSpec, train: bool, seed: int = 0) -> Any:
    """A torch Dataset over a class-folder tree (for a DataLoader with workers)."""
    import torch
    from torch.utils.data import Dataset

    classes, items = list_image_folder(spec.root)

    class _Folder(Dataset):
        def __init__(self) -> None:
            self.classes = classes
            self.items = items
            self.epoch = 0

        def __len__(self) -> int:
            return len(items)

        def __getitem__(self, i: int) -> tuple[Any, int]:
            path, label = items[i]
            rng = np.random.default_rng((seed, self.epoch, i)) if train else None
            arr = load_image(path, spec.resize_size, spec.crop, color=spec.color, train=train, rng=rng)
            x = preprocess(arr[None], spec.scale, spec.mean, spec.std)[0]
            return torch.from_numpy(x), label

    return _Folder()


def batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))
