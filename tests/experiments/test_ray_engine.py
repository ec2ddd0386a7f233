"""The Ray engine: a grid on a local two-CPU Ray instance lands in the sequential layout and is never
recomputed; a worker killed after its first checkpoint is retried and resumes to bitwise the same run;
and the checks that guard a cluster sweep (Ray missing, run folders not shared) fail with one clear line.

Starting Ray takes seconds, so one instance serves the whole module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys

import pytest
import torch

from padream.checkpoint import load_latest_checkpoint
from padream.cli import main
from padream.config import ConfigError
from padream.experiments import ray_engine
from padream.experiments.grid import Cell, make_grid, run_sequential
from padream.experiments.ray_engine import KILL_AFTER_CHECKPOINT_ENV, EngineError, run_ray, task_options

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="Ray is not installed; the Ray engine is optional (pip install padream[ray])")

# 24 training images in batches of 8: 3 cycles per epoch, a checkpoint after each epoch.
TINY = dict(epochs=2, batch_size=8, probe_epochs=1, latent_dim=8, base_channels=4, device="cpu", precision="fp32")
TINY_ARGS = ["--epochs", "2", "--batch-size", "8", "--probe-epochs", "1", "--latent-dim", "8", "--base-channels", "4",
             "--device", "cpu", "--precision", "fp32"]
TIMING = {"seconds", "probe_seconds"}


def without_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMING}


def metrics(run_dir) -> list[dict]:
    return [without_timing(json.loads(line)) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def files(run_dir) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    """A local Ray with 2 CPUs; yields the fault trigger: create the file and the next run to reach a
    checkpoint kills its own worker once. Workers inherit the variable from this process."""
    import ray

    trigger = tmp_path_factory.mktemp("fault") / "kill-after-checkpoint"
    saved = os.environ.get(KILL_AFTER_CHECKPOINT_ENV)
    os.environ[KILL_AFTER_CHECKPOINT_ENV] = str(trigger)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield trigger
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop(KILL_AFTER_CHECKPOINT_ENV, None)
        else:
            os.environ[KILL_AFTER_CHECKPOINT_ENV] = saved


@needs_ray
def test_grid_on_ray_lands_in_the_sequential_layout_and_is_never_recomputed(ray_instance, tmp_path, capsys,
                                                                           write_npz_dataset):
    root = write_npz_dataset(tmp_path, train=24, test=20)
    runs = tmp_path / "runs"
    argv = ["sweep", "--engine", "ray", "--cpus-per-run", "1", "--datasets", "cifar10", "--conditions",
            "pad,wake-only", "--seeds", "0-1", "--runs-dir", str(runs), "--data-root", str(root), *TINY_ARGS]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "linear_probe" not in captured.out + captured.err  # the evaluation's progress went to train.log
    lines = captured.out.splitlines()
    finished = [line for line in lines if line.startswith("[")]
    assert len(finished) == 4 and all(re.search(r"done in \d+s on .*, read-out test acc", line) for line in finished)
    assert lines[-1] == "sweep: 4 done, 0 skipped (already done), 0 failed"

    cells = make_grid(["cifar10"], ["pad", "wake-only"], [0, 1])
    for cell in cells:
        run_dir = cell.run_dir(runs)
        done = json.loads((run_dir / "done.json").read_text())
        assert done["cell"] == str(cell) and done["budget"] == {"epochs": 2, "max_steps": None}
        assert done["last_epoch"]["epoch"] == 2 and done["last_epoch"]["step"] == 6
        rows = metrics(run_dir)
        assert [row["epoch"] for row in rows] == [1, 2] and 0.0 <= rows[-1]["probe/test_acc"] <= 1.0
        config = json.loads((run_dir / "config.json").read_text())["config"]
        assert (config["condition"], config["seed"], config["threads"]) == (cell.condition, cell.seed, 1)
        assert done["eval"]
        assert (run_dir / "eval" / "linear_probe.json").is_file()
        log = (run_dir / "train.log").read_text()
        assert "training" in log and "linear_probe" in log
    assert not (runs / ray_engine.STORAGE_CHECK_DIR).exists()

    # The same files and the same numbers as the sequential engine, run here in the test process.
    cell = cells[-1]
    [result] = run_sequential([cell], tmp_path / "sequential", {**TINY, "threads": 1}, str(root), evaluate=True,
                              log=lambda line: None)
    assert result["status"] == "done"
    assert files(cell.run_dir(tmp_path / "sequential")) == files(cell.run_dir(runs)) - {"train.log"}
    assert metrics(cell.run_dir(tmp_path / "sequential")) == metrics(cell.run_dir(runs))
    on_ray = json.loads((cell.run_dir(runs) / "done.json").read_text())
    assert result["eval"] == pytest.approx(on_ray["eval"])

    stamps = {path: path.stat().st_mtime_ns for path in runs.rglob("*") if path.is_file()}
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "sweep: 0 done, 4 skipped (already done), 0 failed"
    assert stamps == {path: path.stat().st_mtime_ns for path in runs.rglob("*") if path.is_file()}


@needs_ray
def test_a_killed_worker_is_retried_and_resumes_to_bitwise_the_same_run(ray_instance, tmp_path, write_npz_dataset):
    root = write_npz_dataset(tmp_path, train=24, test=20)
    options = {**TINY, "epochs": 3}
    cell = Cell("cifar10", "pad", 0)
    ray_instance.touch()  # arm: the run dies right after its epoch-1 checkpoint (step 3)
    lines: list[str] = []
    [result] = run_ray([cell], tmp_path / "killed", options, str(root), evaluate=False, cpus_per_run=1, max_retries=1,
                       log=lines.append)
    assert not ray_instance.exists(), "the fault did not fire"
    assert result["status"] == "done", lines
    killed = cell.run_dir(tmp_path / "killed")
    log = (killed / "train.log").read_text()
    assert len(set(re.findall(r" pid (\d+): ", log))) == 2  # a second worker took over
    assert re.search(r"resumed from .*step_00000003\.pt \(epoch 1, step 3\)", log)

    [reference] = run_sequential([cell], tmp_path / "reference", {**options, "threads": 1}, str(root),
                                 evaluate=False, log=lambda line: None)
    uninterrupted = cell.run_dir(tmp_path / "reference")
    assert metrics(killed) == metrics(uninterrupted) and len(metrics(killed)) == 3
    assert without_timing(result["last_epoch"]) == without_timing(reference["last_epoch"])
    (path_a, state_a), (path_b, state_b) = (load_latest_checkpoint(d / "checkpoints") for d in (killed, uninterrupted))
    assert path_a.name == path_b.name == "step_00000009.pt"
    for part in ("encoder", "generator"):
        assert state_a[part].keys() == state_b[part].keys()
        for key in state_a[part]:
            assert torch.equal(state_a[part][key], state_b[part][key]), f"{part}.{key}"
    assert str(state_a["encoder_optimizer"]) == str(state_b["encoder_optimizer"])


def test_missing_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if not installed
    assert main(["sweep", "--engine", "ray", "--runs-dir", str(tmp_path), "--conditions", "pad"]) == 2
    assert "pip install padream[ray]" in capsys.readouterr().err


def test_ray_options_need_the_ray_engine(tmp_path, capsys):
    assert main(["sweep", "--address", "auto", "--max-retries", "2", "--runs-dir", str(tmp_path)]) == 2
    assert "--address, --max-retries only apply with --engine ray" in capsys.readouterr().err


def test_unreachable_cluster_fails_fast():
    with pytest.raises(EngineError, match="cannot join the Ray cluster at '127.0.0.1:1'.*ray start --head"):
        ray_engine._check_reachable("127.0.0.1:1", timeout=5)


@pytest.mark.parametrize("device, gpus, expected", [("auto", 0, "cpu"), ("auto", 1, "cuda"), ("cuda:0", 0.5, "cuda:0"),
                                                    ("cuda", 0, "--gpus-per-run above 0"),
                                                    ("cpu", 1, "would leave idle")])
def test_device_follows_the_gpu_reservation(device, gpus, expected):
    if expected.startswith("-") or " " in expected:
        with pytest.raises(ConfigError, match=expected):
            task_options({"device": device}, 1, gpus)
    else:
        options = task_options({"device": device, "download": True}, 4, gpus)
        assert options == {"device": expected, "threads": 4}


def test_storage_that_a_node_cannot_see_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(ray_engine, "TOKEN_WAIT_S", 0.0)
    answer = ray_engine.probe_node(str(tmp_path / "runs" / ".storage-check" / "abc.driver"), "node1", str(tmp_path), [])
    assert "is not shared: node" in answer["problem"] and "abc.driver" in answer["problem"]

    token = tmp_path / "runs" / ".storage-check" / "abc.driver"
    token.parent.mkdir(parents=True)
    token.write_text("abc driverhost\n")
    answer = ray_engine.probe_node(str(token), "node1", str(tmp_path / "data"), ["cifar10"])
    assert "finds no cifar10 train split under --data-root" in answer["problem"]
    assert (token.parent / "abc.node1").exists()
    with pytest.raises(EngineError, match="finds no cifar10"):
        ray_engine.check_answers([answer], token)
    assert not (token.parent / "abc.node1").exists()  # the driver cleans up after the nodes

    lost = {"host": "node2", "token": str(tmp_path / "elsewhere" / "abc.node2")}  # written where the driver can't see
    with pytest.raises(EngineError, match=r"is not shared: the driver on .* cannot read .*abc\.node2"):
        ray_engine.check_answers([lost], token)
