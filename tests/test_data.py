import pickle

import numpy as np
import pytest
import scipy.io
import torch

from padream.data import (DataError, ImageSet, default_data_root, load_dataset, load_split, to_unit_range)


def hwc_images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)


def write_npz(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def test_npz_loading_transposes_to_nchw(tmp_path):
    train_images, test_images = hwc_images(12, 0), hwc_images(7, 1)
    train_labels = np.arange(12, dtype=np.int64) % 10
    test_labels = np.array([9, 0, 1, 2, 3, 4, 5], dtype=np.int64)
    write_npz(tmp_path / "cifar10" / "train.npz", images=train_images, labels=train_labels)
    write_npz(tmp_path / "cifar10" / "test.npz", images=test_images, labels=test_labels)
    train, test = load_dataset("cifar10", tmp_path)
    assert isinstance(train, ImageSet) and len(train) == 12 and len(test) == 7
    assert train.images.dtype == torch.uint8 and train.images.shape == (12, 3, 32, 32)
    assert train.labels.dtype == torch.int64
    assert torch.equal(train.images, torch.from_numpy(train_images.transpose(0, 3, 1, 2).copy()))
    assert torch.equal(test.images, torch.from_numpy(test_images.transpose(0, 3, 1, 2).copy()))
    assert train.images[4, 2, 5, 17] == train_images[4, 5, 17, 2]
    assert test.labels.tolist() == test_labels.tolist()
    assert "train.npz" in train.source


def test_data_root_comes_from_the_environment(tmp_path, monkeypatch):
    write_npz(tmp_path / "cifar10" / "test.npz", images=hwc_images(3), labels=np.zeros(3, dtype=np.int64))
    monkeypatch.setenv("PADREAM_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    assert len(load_split("cifar10", "test")) == 3
    monkeypatch.delenv("PADREAM_DATA")
    assert str(default_data_root()) == "data"


def write_svhn_mat(path, images_hwcn: np.ndarray, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"X": images_hwcn, "y": labels.reshape(-1, 1)})


def test_svhn_mat_maps_ten_to_zero_and_transposes(tmp_path):
    images = hwc_images(6, 3)  # (N, H, W, C)
    stored = np.ascontiguousarray(images.transpose(1, 2, 3, 0))  # the release's (H, W, C, N)
    digits = np.array([0, 1, 9, 0, 5, 3])
    write_svhn_mat(tmp_path / "svhn" / "train_32x32.mat", stored, np.where(digits == 0, 10, digits).astype(np.uint8))
    write_svhn_mat(tmp_path / "test_32x32.mat", stored[..., :2], np.array([10, 4], dtype=np.uint8))
    train, test = load_dataset("svhn", tmp_path)  # train in root/svhn/, test directly in root/
    assert train.labels.tolist() == digits.tolist()
    assert test.labels.tolist() == [0, 4]
    assert train.images.shape == (6, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.images[3, 1, 7, 20] == stored[7, 20, 1, 3]
    assert torch.equal(train.images, torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))


def test_svhn_mat_stored_as_nhwc_is_rejected(tmp_path):
    write_svhn_mat(tmp_path / "svhn" / "train_32x32.mat", hwc_images(5), np.ones(5, dtype=np.uint8))
    with pytest.raises(DataError, match=r"\(32, 32, 3, N\)"):
        load_split("svhn", "train", tmp_path)


def test_missing_dataset_lists_the_paths_tried(tmp_path):
    with pytest.raises(DataError) as info:
        load_split("cifar10", "train", tmp_path)
    message = str(info.value)
    for path in (tmp_path / "cifar10" / "train.npz", tmp_path / "cifar10" / "cifar-10-batches-py",
                 tmp_path / "cifar-10-batches-py"):
        assert str(path) in message
    assert "--data-root" in message
    with pytest.raises(DataError, match="test_32x32.mat"):
        load_split("svhn", "test", tmp_path)


@pytest.mark.parametrize("arrays, match", [
    (dict(images=hwc_images(4)), "missing array.*labels"),
    (dict(images=hwc_images(4).astype(np.float32), labels=np.zeros(4, dtype=np.int64)), "uint8"),
    (dict(images=hwc_images(4), labels=np.array([0, 1, 10, 2])), "0..9"),
    (dict(images=hwc_images(4), labels=np.array([0, -1, 1, 2])), "0..9"),
    (dict(images=hwc_images(0), labels=np.zeros(0, dtype=np.int64)), "empty"),
    (dict(images=hwc_images(4), labels=np.zeros(3, dtype=np.int64)), "4 images but 3 labels"),
    (dict(images=hwc_images(4).transpose(0, 3, 1, 2), labels=np.zeros(4, dtype=np.int64)), r"\(N, 32, 32, 3\)"),
    (dict(images=hwc_images(4), labels=np.zeros(4, dtype=np.float32)), "integers"),
    (dict(images=hwc_images(4), labels=np.array([{}, 1, 2, 3], dtype=object)), "cannot read"),
])
def test_malformed_npz_gives_data_error(tmp_path, arrays, match):
    write_npz(tmp_path / "cifar10" / "train.npz", **arrays)
    with pytest.raises(DataError, match=match) as info:
        load_split("cifar10", "train", tmp_path)
    assert "train.npz" in str(info.value)


def test_file_that_is_not_an_npz_gives_data_error(tmp_path):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "train.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="cannot read as .npz"):
        load_split("cifar10", "train", tmp_path)


def test_unknown_dataset_or_split(tmp_path):
    with pytest.raises(DataError, match="did you mean 'cifar10'"):
        load_split("cifar1", "train", tmp_path)
    with pytest.raises(DataError, match="unknown split"):
        load_split("cifar10", "validation", tmp_path)


def write_cifar_batches(folder, batches: dict[str, tuple[np.ndarray, list[int]]]) -> None:
    folder.mkdir(parents=True)
    for name, (data, labels) in batches.items():
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, handle, protocol=2)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, handle, protocol=2)


def test_torchvision_cifar_layout_loads(tmp_path, monkeypatch):
    import torchvision.datasets
    import torchvision.datasets.cifar

    # Fake files cannot match torchvision's MD5 sums; everything else is its real reader.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
        batches[name] = (data, [(i + j) % 10 for j in range(4)])
    write_cifar_batches(tmp_path / "cifar10" / "cifar-10-batches-py", batches)

    train, test = load_dataset("cifar10", tmp_path)
    assert len(train) == 20 and len(test) == 4
    assert train.images.dtype == torch.uint8 and train.images.shape == (20, 3, 32, 32)
    expected_train = np.concatenate([batches[f"data_batch_{k}"][0] for k in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert torch.equal(train.images, torch.from_numpy(expected_train))
    assert train.labels.tolist() == sum((batches[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    # Channel-planar rows: byte 1024 * c + 32 * h + w is pixel (c, h, w).
    assert test.images[2, 1, 3, 5] == batches["test_batch"][0][2, 1024 + 32 * 3 + 5]
    assert test.labels.tolist() == batches["test_batch"][1]


def test_unreadable_torchvision_cifar_folder_gives_data_error(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()  # present but empty
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_split("cifar10", "train", tmp_path)


def test_npz_is_preferred_over_torchvision_files(tmp_path):
    write_npz(tmp_path / "cifar10" / "train.npz", images=hwc_images(3), labels=np.zeros(3, dtype=np.int64))
    (tmp_path / "cifar10" / "cifar-10-batches-py").mkdir()
    assert len(load_split("cifar10", "train", tmp_path)) == 3


def test_to_unit_range():
    images = torch.tensor([0, 255, 51, 204], dtype=torch.uint8)
    out = to_unit_range(images)
    assert out.dtype == torch.float32
    assert out[0].item() == -1.0 and out[1].item() == 1.0
    assert torch.allclose(out, torch.tensor([-1.0, 1.0, -0.6, 0.6]), atol=1e-6)
    assert images.tolist() == [0, 255, 51, 204]  # the input is not modified


def test_image_set_subset_and_to():
    images = torch.from_numpy(hwc_images(5).transpose(0, 3, 1, 2).copy())
    data = ImageSet(images, torch.arange(5), "x")
    part = data.subset(2)
    assert len(part) == 2 and torch.equal(part.images, images[:2]) and part.labels.tolist() == [0, 1]
    assert part.source == "x[:2]"
    assert torch.equal(data.to("cpu").images, images)
