"""CIFAR-10 and SVHN, loaded once into memory as uint8 tensors (N, 3, 32, 32) with int64 labels 0..9.

Images stay uint8 until a batch is drawn (4x less memory, and one conversion per batch on the
compute device instead of per-sample transforms). Accepted sources, tried in this order, for
``root`` = --data-root, else $PADREAM_DATA, else ./data:

1. ``root/NAME/{train,test}.npz`` with ``images`` uint8 (N, 32, 32, 3) and ``labels`` (N,);
2. torchvision's files: ``cifar-10-batches-py/`` or ``{train,test}_32x32.mat``, in ``root/NAME/`` or ``root/``;
3. a torchvision download into ``root/NAME/`` when ``download=True`` (needs a network).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from padream.config import DATASETS, closest

SPLITS = ("train", "test")
NUM_CLASSES = 10
CLASS_NAMES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "svhn": tuple(str(d) for d in range(10)),
}


class DataError(ValueError):
    """Data that is missing or malformed; the message names the file and how to fix it."""


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # uint8 (N, 3, 32, 32)
    labels: torch.Tensor  # int64 (N,)
    source: str

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device), self.source)

    def subset(self, count: int) -> "ImageSet":
        """The first `count` items (for smoke runs and tests)."""
        return ImageSet(self.images[:count], self.labels[:count], f"{self.source}[:{count}]")


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of the generator's tanh. The only place this happens."""
    return images.float().div_(127.5).sub_(1.0)


def default_data_root(data_root: str | os.PathLike | None = None) -> Path:
    return Path(data_root or os.environ.get("PADREAM_DATA") or "data")


def validated(images: np.ndarray, labels: np.ndarray, source: str) -> ImageSet:
    """Check shape, dtype and label range; return NCHW uint8 tensors."""
    if images.dtype != np.uint8:
        raise DataError(f"{source}: images must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise DataError(f"{source}: images must have shape (N, 32, 32, 3), got {images.shape}")
    if images.shape[0] == 0:
        raise DataError(f"{source}: the split is empty")
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{source}: {images.shape[0]} images but {labels.shape[0]} labels")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{source}: labels must be integers, got {labels.dtype}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{source}: labels must lie in 0..{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}")
    tensor = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    return ImageSet(tensor, torch.from_numpy(labels.astype(np.int64)), source)


def load_npz(path: Path) -> ImageSet:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"images", "labels"} - set(archive.files)
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(sorted(missing))}; "
                                f"expected 'images' (N, 32, 32, 3) uint8 and 'labels' (N,)")
            return validated(archive["images"], archive["labels"], str(path))
    except DataError:
        raise
    except Exception as error:  # zip, pickle or format errors: all mean "not a usable npz"
        raise DataError(f"{path}: cannot read as .npz ({error})") from error


def load_svhn_mat(path: Path) -> ImageSet:
    """torchvision/SVHN format: X is (32, 32, 3, N) and digit 0 is stored as label 10."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as error:
        raise DataError(f"{path}: cannot read as a MATLAB .mat file ({error})") from error
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: expected variables 'X' (32, 32, 3, N) and 'y' (N, 1)")
    images, labels = mat["X"], mat["y"].reshape(-1).astype(np.int64)
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: 'X' must have shape (32, 32, 3, N) as in the SVHN release, got {images.shape}")
    labels[labels == 10] = 0
    return validated(np.ascontiguousarray(images.transpose(3, 0, 1, 2)), labels, str(path))


def load_cifar_batches(folder: Path, split: str) -> ImageSet:
    from torchvision.datasets import CIFAR10

    try:
        dataset = CIFAR10(str(folder.parent), train=(split == "train"), download=False)
    except Exception as error:  # missing, partial or corrupted batch files
        raise DataError(f"{folder}: cannot read torchvision's CIFAR-10 batches ({error})") from error
    return validated(np.asarray(dataset.data), np.asarray(dataset.targets), str(folder))


def _download(name: str, root: Path, split: str) -> ImageSet:
    from torchvision import datasets

    target = root / name
    try:
        if name == "cifar10":
            datasets.CIFAR10(str(target), train=(split == "train"), download=True)
            return load_cifar_batches(target / "cifar-10-batches-py", split)
        datasets.SVHN(str(target), split=split, download=True)
        return load_svhn_mat(target / f"{split}_32x32.mat")
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"downloading {name} into {target} failed ({error})") from error


def candidate_paths(name: str, root: Path, split: str) -> list[tuple[Path, callable]]:
    """Where a split may live, with the loader for each place, in the order they are tried."""
    places = [(root / name / f"{split}.npz", load_npz)]
    for folder in (root / name, root):
        if name == "cifar10":
            places.append((folder / "cifar-10-batches-py", lambda p, s=split: load_cifar_batches(p, s)))
        else:
            places.append((folder / f"{split}_32x32.mat", load_svhn_mat))
    return places


def load_split(name: str, split: str, data_root: str | os.PathLike | None = None,
               download: bool = False) -> ImageSet:
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'{closest(name, DATASETS)}; choose from {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}'; choose from {', '.join(SPLITS)}")
    root = default_data_root(data_root)
    tried = []
    for path, loader in candidate_paths(name, root, split):
        if path.exists():
            return loader(path)
        tried.append(str(path))
    if download:
        return _download(name, root, split)
    raise DataError(
        f"no {name} {split} split found; tried: {', '.join(tried)}. Point --data-root (or $PADREAM_DATA) "
        f"at a folder holding {name}/{split}.npz or torchvision's files, or pass --download when online.")


def load_dataset(name: str, data_root: str | os.PathLike | None = None,
                 download: bool = False) -> tuple[ImageSet, ImageSet]:
    return load_split(name, "train", data_root, download), load_split(name, "test", data_root, download)
