"""Nothing lost on a crash: SIGKILL at chosen and random moments, resume, compare bitwise; full disk."""

from __future__ import annotations

import errno
import json

import pytest
import torch

from padream import checkpoint as checkpoint_module
from padream.checkpoint import checkpoint_paths, load_latest_checkpoint
from padream.reliability import compare_runs, crash_and_resume, launch
from padream.train import Trainer

TRAIN_ARGS = ["--epochs", "3", "--batch-size", "8", "--latent-dim", "8", "--base-channels", "4",
              "--probe-epochs", "1", "--threads", "1", "--device", "cpu", "--precision", "fp32"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, write_npz_dataset):
    # 64 training images / batch 8 = 8 cycles per epoch, 3 epochs.
    return write_npz_dataset(tmp_path_factory.mktemp("data"), train=64, test=40)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, data_root):
    run = tmp_path_factory.mktemp("reference") / "run"
    assert launch(run, TRAIN_ARGS + ["--data-root", str(data_root)]) == 0
    return run


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path, data_root, reference_run):
    run = tmp_path / "run"
    args = TRAIN_ARGS + ["--data-root", str(data_root)]
    # mid-epoch steps (epochs 1 and 2), inside a checkpoint write, inside the read-out, and random moments
    points = ["step:3", "step:12", "checkpoint_write:1", "probe:2", "checkpoint_write:2"]
    outcome = crash_and_resume(run, args, points, random_kills=1, seed=7, max_delay=6.0)

    assert outcome["kills_landed"] >= len(points)
    assert compare_runs(reference_run, run) == []
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]  # nothing duplicated or lost


def test_compare_runs_detects_a_different_run(tmp_path, data_root, reference_run):
    other = tmp_path / "other"
    assert launch(other, TRAIN_ARGS + ["--data-root", str(data_root), "--seed", "1"]) == 0
    differences = compare_runs(reference_run, other)
    assert any(d.startswith("encoder") for d in differences)
    assert any(d.startswith("metrics.jsonl") for d in differences)


def test_full_disk_during_checkpoint_keeps_the_previous_one(tmp_path, tiny_config, image_sets, monkeypatch):
    run = tmp_path / "run"
    config = tiny_config(epochs=2, probe_every_epoch=False)
    Trainer(config.replace(epochs=1), run, data=image_sets, progress=False).run()
    (good,) = checkpoint_paths(run / "checkpoints")
    good_bytes = good.read_bytes()
    metrics_before = (run / "metrics.jsonl").read_text()

    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode and str(path).endswith(".tmp") and "step_" in str(path):
            def write(_data):
                raise OSError(errno.ENOSPC, "No space left on device")
            handle.write = write
        return handle

    monkeypatch.setattr("builtins.open", full_disk_open)
    with pytest.raises(OSError, match="No space left"):
        Trainer(config, run, resume=True, data=image_sets, progress=False).run()
    monkeypatch.undo()

    assert checkpoint_paths(run / "checkpoints") == [good]
    assert good.read_bytes() == good_bytes
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the half-written file was removed
    assert (run / "metrics.jsonl").read_text() == metrics_before
    path, state = load_latest_checkpoint(run / "checkpoints")
    assert path == good and state["epoch"] == 1


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, tiny_config, image_sets):
    run = tmp_path / "run"
    config = tiny_config(epochs=1, probe_every_epoch=False)
    Trainer(config, run, data=image_sets, progress=False).run()
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    trainer = Trainer(config.replace(epochs=2), run, resume=True, data=image_sets, progress=False)
    with torch.no_grad():
        trainer.encoder.latent_head.weight.fill_(float("nan"))
    from padream.train import NonFiniteLossError
    with pytest.raises(NonFiniteLossError, match=r"phase wake at step 26.*loss/wake_kl"):
        trainer.run()
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before


def test_atomic_write_removes_its_temporary_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def failing_replace(*_args):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(checkpoint_module.os, "replace", failing_replace)
    with pytest.raises(OSError):
        checkpoint_module.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_run_folder_in_use_is_refused_then_released(tmp_path, tiny_config, image_sets):
    from padream.train import RunDirError

    config = tiny_config(epochs=1, probe_every_epoch=False)
    first = Trainer(config, tmp_path / "run", data=image_sets, progress=False)
    with pytest.raises(RunDirError, match="in use by another padream process"):
        Trainer(config, tmp_path / "run", resume=True, data=image_sets, progress=False)
    first.run()  # releases the folder when it returns
    assert Trainer(config.replace(epochs=2), tmp_path / "run", resume=True, data=image_sets,
                   progress=False).run()[-1]["epoch"] == 2
