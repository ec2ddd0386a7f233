import json
import math

import pytest
import torch

from padream import phases
from padream.checkpoint import CheckpointError, checkpoint_paths, load_latest_checkpoint
from padream.config import ConfigError, TrainConfig
from padream.train import CHECKPOINT_DIR, CONFIG_FILE, METRICS_FILE, NonFiniteLossError, RunDirError, Trainer

TIMING_KEYS = {"seconds", "probe_seconds"}
WAKE_KEYS = {"loss/wake_rec", "loss/wake_kl", "loss/wake_real", "d/real_mean"}
SLEEP_KEYS = {"nrem": {"loss/nrem_latent"}, "rem": {"loss/rem_fake", "d/dream_mean"}}
PROBE_KEYS = {"probe/train_acc", "probe/test_acc", "probe/test_acc_last5", "probe_seconds"}


@pytest.fixture
def small_data(generated_set):
    """40 training images (5 steps of 8 per epoch) and 30 test images."""
    return generated_set(40, seed=0), generated_set(30, seed=1)


def train(config, run_dir, data, resume=False):
    messages = []
    trainer = Trainer(config, run_dir, data=data, resume=resume, progress=False, log=messages.append)
    history = trainer.run()
    return trainer, history, messages


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines()]


def assert_same_weights(a: Trainer, b: Trainer):
    for net_a, net_b in ((a.encoder, b.encoder), (a.generator, b.generator)):
        state_a, state_b = net_a.state_dict(), net_b.state_dict()
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            assert torch.equal(state_a[key], state_b[key]), key


def test_same_seed_gives_identical_runs(tiny_config, small_data, tmp_path):
    config = tiny_config(epochs=2, max_steps=7)
    first, history_a, _ = train(config, tmp_path / "a", small_data)
    second, history_b, _ = train(config, tmp_path / "b", small_data)
    assert [row["step"] for row in history_a] == [5, 7]
    assert without_timing(history_a) == without_timing(history_b)
    assert_same_weights(first, second)
    other, history_c, _ = train(tiny_config(epochs=2, max_steps=7, seed=1), tmp_path / "c", small_data)
    assert without_timing(history_c) != without_timing(history_a)
    assert not torch.equal(other.encoder.latent_head.weight, first.encoder.latent_head.weight)


@pytest.mark.parametrize("stop, total", [(2, 4), (3, 7)], ids=["mid-epoch", "across-epoch-boundary"])
def test_resume_reproduces_an_uninterrupted_run(tiny_config, small_data, tmp_path, stop, total):
    resumed_dir = tmp_path / "resumed"
    _, history, _ = train(tiny_config(epochs=2, max_steps=stop), resumed_dir, small_data)
    assert history[-1]["partial"] is True and history[-1]["step"] == stop

    resumed = Trainer(tiny_config(epochs=2, max_steps=total), resumed_dir, data=small_data, resume=True,
                      progress=False, log=lambda message: None)
    assert resumed.step == stop
    assert read_metrics(resumed_dir) == []  # the partial read-out is not kept as an epoch
    resumed_history = resumed.run()

    single, single_history, _ = train(tiny_config(epochs=2, max_steps=total), tmp_path / "single", small_data)
    assert single.step == resumed.step == total
    assert_same_weights(resumed, single)
    assert without_timing(resumed_history) == without_timing(single_history)
    assert without_timing(read_metrics(resumed_dir)) == without_timing(read_metrics(tmp_path / "single"))
    expected_steps = [total] if total <= 5 else [5, total]
    assert [row["step"] for row in single_history] == expected_steps


def test_resume_to_more_epochs_matches_a_longer_run(tiny_config, small_data, tmp_path):
    train(tiny_config(epochs=1), tmp_path / "resumed", small_data)
    resumed, history, messages = train(tiny_config(epochs=2), tmp_path / "resumed", small_data, resume=True)
    assert any("resumed from" in m and "step 5" in m for m in messages)
    single, single_history, _ = train(tiny_config(epochs=2), tmp_path / "single", small_data)
    assert [row["epoch"] for row in history] == [1, 2]
    assert without_timing(history) == without_timing(single_history)
    assert_same_weights(resumed, single)


def test_non_empty_run_dir_without_resume_is_refused(config, small_data, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not empty.*--resume"):
        Trainer(config, run_dir, data=small_data, progress=False, log=lambda m: None)
    assert (run_dir / "notes.txt").read_text() == "keep me"


def test_resume_of_a_folder_that_is_not_a_run_is_refused(config, small_data, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="config.json"):
        Trainer(config, run_dir, data=small_data, resume=True, progress=False, log=lambda m: None)
    assert sorted(p.name for p in run_dir.iterdir()) == ["notes.txt"]


def test_resume_with_a_different_config_names_the_differing_keys(tiny_config, small_data, tmp_path):
    train(tiny_config(epochs=2, max_steps=2), tmp_path / "run", small_data)
    with pytest.raises(CheckpointError) as info:
        Trainer(tiny_config(epochs=2, max_steps=4, latent_dim=16, lr=1e-3), tmp_path / "run", data=small_data,
                resume=True, progress=False, log=lambda m: None)
    message = str(info.value)
    assert "latent_dim" in message and "lr" in message
    assert "max_steps" not in message and "epochs" not in message  # allowed to change on resume
    assert "8" in message and "16" in message


@pytest.mark.parametrize("condition, phase_names", [
    ("pad", ("nrem", "rem")), ("no-rem", ("nrem",)), ("wake-only", ()),
])
def test_metrics_file_and_config_file(tiny_config, small_data, tmp_path, condition, phase_names):
    config = tiny_config(condition)
    trainer, history, _ = train(config, tmp_path / "run", small_data)
    rows = read_metrics(tmp_path / "run")
    assert len(rows) == 1 and rows == history
    row = rows[0]
    expected = {"epoch", "step", "seconds"} | WAKE_KEYS | PROBE_KEYS
    for name in phase_names:
        expected |= SLEEP_KEYS[name]
    assert set(row) == expected
    assert row["epoch"] == 1 and row["step"] == 5
    assert 0.0 <= row["probe/test_acc"] <= 1.0
    assert row["probe/test_acc"] * 30 == pytest.approx(round(row["probe/test_acc"] * 30), abs=1e-4)
    assert all(math.isfinite(v) for k, v in row.items() if k.startswith(("loss/", "d/")))
    assert row["loss/wake_rec"] > 0 and 0 < row["d/real_mean"] < 1

    saved = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert TrainConfig.from_dict(saved["config"]) == config
    assert saved["config"]["phases"] == list(config.phases)
    assert saved["train_images"] == 40 and saved["test_images"] == 30
    assert saved["device"] == "cpu" and saved["precision"] == "fp32"
    if condition == "no-rem":
        assert saved["config"]["wake_latent_noise_std"] == pytest.approx(math.sqrt(0.5))
        assert saved["config"]["nrem_weight"] == 0.5

    path, state = load_latest_checkpoint(tmp_path / "run" / CHECKPOINT_DIR)
    assert path.name == "step_00000005.pt" and state["step"] == 5 and state["epoch"] == 1
    assert torch.equal(state["encoder"]["latent_head.weight"], trainer.encoder.latent_head.weight)


def test_epochs_average_their_cycles_metrics(tiny_config, small_data, tmp_path, monkeypatch):
    seen = []
    original = phases.PHASES["wake"]

    def recording_wake(cycle, images):
        metrics = original(cycle, images)
        seen.append(float(metrics["loss/wake_rec"]))
        return metrics

    monkeypatch.setitem(phases.PHASES, "wake", recording_wake)
    _, history, _ = train(tiny_config("wake-only", probe_every_epoch=False), tmp_path / "run", small_data)
    assert len(seen) == 5
    assert history[0]["loss/wake_rec"] == pytest.approx(sum(seen) / 5, rel=1e-6)
    assert not set(history[0]) & PROBE_KEYS  # no read-out unless asked


def test_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint(tiny_config, small_data, tmp_path,
                                                                    monkeypatch):
    calls = []
    original = phases.PHASES["nrem"]

    def failing_nrem(cycle, images):
        metrics = original(cycle, images)
        calls.append(1)
        if len(calls) == 7:
            metrics["loss/nrem_latent"] = torch.tensor(float("nan"))
        return metrics

    monkeypatch.setitem(phases.PHASES, "nrem", failing_nrem)
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as info:
        train(tiny_config(epochs=2), run_dir, small_data)
    message = str(info.value)
    assert "loss/nrem_latent" in message and "step 7" in message
    assert "loss/wake_rec" not in message
    assert [p.name for p in checkpoint_paths(run_dir / CHECKPOINT_DIR)] == ["step_00000005.pt"]
    path, state = load_latest_checkpoint(run_dir / CHECKPOINT_DIR)
    assert state["step"] == 5
    assert [row["step"] for row in read_metrics(run_dir)] == [5]


def test_training_set_smaller_than_a_batch_is_refused(config, generated_set, tmp_path):
    with pytest.raises(ConfigError, match="fewer than one batch"):
        Trainer(config, tmp_path / "run", data=(generated_set(5), generated_set(5)), progress=False,
                log=lambda m: None)


def test_reconstruction_loss_decreases_on_an_easy_dataset(tiny_config, generated_set, tmp_path):
    easy = generated_set(64)
    easy = type(easy)(easy.images[:1].expand(64, -1, -1, -1).clone(), easy.labels, "one image")
    config = tiny_config("wake-only", epochs=6, lr=2e-3, probe_every_epoch=False)
    _, history, _ = train(config, tmp_path / "run", (easy, easy))
    losses = [row["loss/wake_rec"] for row in history]
    assert len(losses) == 6
    assert losses[-1] < 0.5 * losses[0]


def test_dream_pictures_are_saved_after_chosen_epochs_and_the_last(tmp_path, tiny_config, image_sets):
    config = tiny_config(epochs=3, dream_epochs=(1,), probe_every_epoch=False)
    Trainer(config, tmp_path / "run", data=image_sets, progress=False).run()
    saved = sorted(p.name for p in (tmp_path / "run" / "dreams").iterdir())
    assert saved == ["epoch_0001.png", "epoch_0003.png"]
    assert (tmp_path / "run" / "dreams" / "epoch_0001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
