import json
from pathlib import Path

import pytest

from padream.cli import main

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SMALL = ["--probe-epochs", "1", "--latent-dim", "8", "--base-channels", "4", "--no-progress"]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("padream: error")]


def exits_with_usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and "Traceback" not in err
    return error_lines(err)[0]


def test_train_smoke_run(tmp_path, capsys, write_npz_dataset):
    if (SHARED_DATA / "cifar10" / "train.npz").exists() and (SHARED_DATA / "cifar10" / "test.npz").exists():
        root, train_images, test_images = SHARED_DATA, 50_000, 10_000
    else:
        root, train_images, test_images = write_npz_dataset(tmp_path / "data"), 200, 100
    run_dir = tmp_path / "run"
    code = main(["train", "--data-root", str(root), "--run-dir", str(run_dir), "--max-steps", "3", *SMALL])
    assert code == 0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["partial"] is True and row["step"] == 3 and row["epoch"] == 1
    assert 0.0 <= row["probe/test_acc"] <= 1.0
    assert row["probe/test_acc"] * test_images == pytest.approx(round(row["probe/test_acc"] * test_images), abs=0.01)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config"]["max_steps"] == 3 and saved["config"]["latent_dim"] == 8
    assert saved["config"]["base_channels"] == 4 and saved["config"]["probe_epochs"] == 1
    assert saved["train_images"] == train_images and saved["test_images"] == test_images
    out = capsys.readouterr().out
    assert "epoch 1 (partial) | step 3" in out


def test_unknown_condition_suggests_the_closest(capsys):
    line = exits_with_usage_error(["train", "--condition", "no-rme"], capsys)
    assert "no-rme" in line and "did you mean 'no-rem'" in line


def test_unknown_or_abbreviated_option_suggests_the_full_name(capsys):
    line = exits_with_usage_error(["train", "--epoch", "3"], capsys)
    assert "--epoch" in line and "did you mean '--epochs'" in line
    line = exits_with_usage_error(["eval", "--untrainde"], capsys)
    assert "did you mean '--untrained'" in line


@pytest.mark.parametrize("argv, match", [
    (["--epochs", "0"], "--epochs: must be at least 1"),
    (["--batch-size", "-1"], "--batch-size: must be at least 1"),
    (["--batch-size", "two"], "expected a positive integer"),
    (["--lr", "0"], "--lr: must be positive"),
    (["--precision", "fp16"], "invalid choice 'fp16'"),
])
def test_invalid_option_values_are_usage_errors(argv, match, capsys):
    assert match in exits_with_usage_error(["train", *argv], capsys)


def test_config_errors_exit_2_without_traceback(tmp_path, capsys):
    code = main(["train", "--batch-size", "1", "--run-dir", str(tmp_path / "run"), *SMALL])
    assert code == 2
    err = capsys.readouterr().err
    assert error_lines(err) == ["padream: error: batch_size must be at least 2: the KL term needs a batch "
                                "standard deviation"]
    assert "Traceback" not in err


def test_missing_data_is_reported_in_one_line(tmp_path, capsys):
    root = tmp_path / "empty"
    code = main(["train", "--data-root", str(root), "--run-dir", str(tmp_path / "run"), *SMALL])
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = error_lines(err)
    assert "no cifar10 train split found; tried:" in line and str(root / "cifar10" / "train.npz") in line


def test_train_into_a_used_run_dir_needs_resume_and_eval_reads_it(tmp_path, capsys, npz_root):
    run_dir = tmp_path / "run"
    argv = ["train", "--data-root", str(npz_root), "--run-dir", str(run_dir), "--max-steps", "3", *SMALL]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    assert "--resume" in error_lines(capsys.readouterr().err)[0]

    assert main(["eval", str(run_dir), "--data-root", str(npz_root)]) == 0
    printed = json.loads(capsys.readouterr().out)
    result = json.loads((run_dir / "eval.json").read_text())
    assert printed == result
    assert 0.0 <= result["probe/test_acc"] <= 1.0
    assert result["step"] == 3 and result["condition"] == "pad" and result["test_images"] == 100
    assert result["checkpoint"].endswith("step_00000003.pt")

    other = tmp_path / "other.json"
    assert main(["eval", str(run_dir), "--data-root", str(npz_root), "--out", str(other)]) == 0
    assert json.loads(other.read_text())["probe/test_acc"] == result["probe/test_acc"]


def test_eval_untrained_on_generated_data(tmp_path, capsys, npz_root):
    out = tmp_path / "untrained.json"
    assert main(["eval", "--untrained", "--data-root", str(npz_root), "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads(out.read_text())
    assert result["untrained"] is True and result["dataset"] == "cifar10"
    assert result["train_images"] == 200 and result["test_images"] == 100
    assert 0.0 <= result["probe/test_acc"] <= 1.0


def test_eval_errors(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["eval", str(tmp_path / "run")]) == 2
    assert "no loadable checkpoint" in error_lines(capsys.readouterr().err)[0]
    assert main(["eval"]) == 2
    assert "--untrained" in error_lines(capsys.readouterr().err)[0]
    assert main(["eval", str(tmp_path / "run"), "--untrained"]) == 2
    assert "not both" in error_lines(capsys.readouterr().err)[0]
