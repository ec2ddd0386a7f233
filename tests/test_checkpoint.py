import hashlib
import io
import pickle
import warnings

import pytest
import torch

from padream.checkpoint import (FORMAT_VERSION, CheckpointError, atomic_write_text, checkpoint_paths,
                                load_checkpoint_file, load_latest_checkpoint, save_checkpoint)


def state(step: int) -> dict:
    return {"step": step,
            "nets": {"encoder": {"w": torch.full((2, 3), float(step)), "b": torch.arange(3)}},
            "history": [{"loss": 0.5 * step, "partial": False}], "order": None, "name": f"run{step}"}


class Marker:
    """Unpickling this object creates a file: proof that a pickle ran code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_round_trip_of_nested_state(tmp_path):
    path = save_checkpoint(tmp_path, 7, state(7))
    assert path.name == "step_00000007.pt"
    loaded = load_checkpoint_file(path)
    assert loaded["format_version"] == FORMAT_VERSION
    assert torch.equal(loaded["nets"]["encoder"]["w"], torch.full((2, 3), 7.0))
    assert torch.equal(loaded["nets"]["encoder"]["b"], torch.arange(3))
    assert loaded["history"] == [{"loss": 3.5, "partial": False}]
    assert loaded["order"] is None and loaded["name"] == "run7" and loaded["step"] == 7
    digest = (tmp_path / "step_00000007.sha256").read_text().strip()
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not list(tmp_path.glob(".*.tmp"))


def test_only_the_newest_two_checkpoints_are_kept(tmp_path):
    for step in (1, 2, 3, 10):
        save_checkpoint(tmp_path, step, state(step))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_00000003.pt", "step_00000003.sha256", "step_00000010.pt", "step_00000010.sha256"]
    assert [p.name for p in checkpoint_paths(tmp_path)] == ["step_00000010.pt", "step_00000003.pt"]
    path, loaded = load_latest_checkpoint(tmp_path)
    assert path.name == "step_00000010.pt" and loaded["step"] == 10


def truncate(path):
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])


def flip_byte(path):
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))


@pytest.mark.parametrize("damage", [truncate, flip_byte])
def test_damaged_checkpoint_is_detected_and_skipped(tmp_path, damage):
    save_checkpoint(tmp_path, 1, state(1))
    newest = save_checkpoint(tmp_path, 2, state(2))
    damage(newest)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint_file(newest)
    with pytest.warns(UserWarning, match="damaged"):
        path, loaded = load_latest_checkpoint(tmp_path)
    assert path.name == "step_00000001.pt"
    assert loaded["step"] == 1 and torch.equal(loaded["nets"]["encoder"]["w"], torch.full((2, 3), 1.0))


def test_truncated_checkpoint_without_checksum_file_is_detected(tmp_path):
    path = save_checkpoint(tmp_path, 1, state(1))
    path.with_suffix(".sha256").unlink()
    truncate(path)
    with pytest.raises(CheckpointError, match="not a loadable"):
        load_checkpoint_file(path)
    with pytest.warns(UserWarning):
        assert load_latest_checkpoint(tmp_path) is None


def test_empty_or_missing_folder_has_no_checkpoint(tmp_path):
    assert load_latest_checkpoint(tmp_path / "missing") is None
    assert load_latest_checkpoint(tmp_path) is None


def write_with_checksum(path, payload: bytes) -> None:
    path.write_bytes(payload)
    atomic_write_text(path.with_suffix(".sha256"), hashlib.sha256(payload).hexdigest() + "\n")


@pytest.mark.parametrize("form", ["pickle", "torch.save"])
def test_checkpoint_holding_code_is_refused_without_running_it(tmp_path, form):
    # Control: an ordinary unpickling of the payload does create the marker file.
    control = tmp_path / "control_marker"
    pickle.loads(pickle.dumps(Marker(control))).close()
    assert control.exists()

    marker = tmp_path / "marker"
    if form == "pickle":
        payload = pickle.dumps({"format_version": FORMAT_VERSION, "evil": Marker(marker)}, protocol=2)
    else:
        buffer = io.BytesIO()
        torch.save({"format_version": FORMAT_VERSION, "evil": Marker(marker)}, buffer)
        payload = buffer.getvalue()
    folder = tmp_path / "checkpoints"
    save_checkpoint(folder, 1, state(1))
    evil = folder / "step_00000002.pt"
    write_with_checksum(evil, payload)  # a valid checksum: only safe loading can stop it

    with pytest.raises(CheckpointError):
        load_checkpoint_file(evil)
    with pytest.warns(UserWarning, match="damaged"):
        path, loaded = load_latest_checkpoint(folder)
    assert path.name == "step_00000001.pt"
    assert not marker.exists()


def test_non_padream_payloads_are_refused(tmp_path):
    for name, obj in (("step_00000001.pt", [1, 2, 3]), ("step_00000002.pt", {"format_version": 999})):
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        write_with_checksum(tmp_path / name, buffer.getvalue())
        with pytest.raises(CheckpointError, match="not a padream checkpoint"):
            load_checkpoint_file(tmp_path / name)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "metrics.jsonl"
    atomic_write_text(target, "first\n")
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoint_paths(tmp_path) == []
