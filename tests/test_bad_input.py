"""Every bad input gets one clear error line, exit status 2, no traceback, and changes no existing file."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from padream.cli import main

TINY = ["--latent-dim", "8", "--base-channels", "4", "--batch-size", "8", "--probe-epochs", "1", "--no-progress",
        "--device", "cpu", "--precision", "fp32", "--threads", "1"]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors
        code = exit_.code
    return code, capsys.readouterr().err


def assert_one_clear_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("padream: error:")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write_npz(root: Path, name: str = "cifar10", train: dict | None = None, test: dict | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    good = lambda n: dict(images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),  # noqa: E731
                          labels=np.arange(n, dtype=np.int64) % 10)
    np.savez(folder / "train.npz", **(train if train is not None else good(32)))
    np.savez(folder / "test.npz", **(test if test is not None else good(16)))
    return root


BAD_SPLITS = {
    "no labels": (dict(images=np.zeros((32, 32, 32, 3), np.uint8)), "missing array(s) labels"),
    "float images": (dict(images=np.zeros((32, 32, 32, 3), np.float32), labels=np.zeros(32, np.int64)),
                     "must be uint8"),
    "wrong shape": (dict(images=np.zeros((32, 32, 32, 1), np.uint8), labels=np.zeros(32, np.int64)),
                    "(N, 32, 32, 3)"),
    "label out of range": (dict(images=np.zeros((32, 32, 32, 3), np.uint8), labels=np.full(32, 10, np.int64)),
                           "labels must lie in 0..9"),
    "empty split": (dict(images=np.zeros((0, 32, 32, 3), np.uint8), labels=np.zeros(0, np.int64)), "empty"),
    "fewer than a batch": (dict(images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.zeros(4, np.int64)),
                           "fewer than one batch"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPLITS))
def test_bad_training_data(case, tmp_path, capsys):
    split, fragment = BAD_SPLITS[case]
    root = write_npz(tmp_path / "data", train=split)
    run_dir = tmp_path / "run"
    before = snapshot(tmp_path)
    code, err = run_cli(["train", "--data-root", str(root), "--run-dir", str(run_dir), *TINY], capsys)
    assert_one_clear_line(code, err, fragment)
    assert snapshot(tmp_path) == before
    assert not run_dir.exists()


def test_svhn_mat_in_the_wrong_layout(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "svhn").mkdir(parents=True)
    for split in ("train", "test"):
        savemat(root / "svhn" / f"{split}_32x32.mat",
                {"X": np.zeros((16, 32, 32, 3), np.uint8), "y": np.ones((16, 1), np.uint8)})
    code, err = run_cli(["train", "--dataset", "svhn", "--data-root", str(root), "--run-dir",
                         str(tmp_path / "run"), *TINY], capsys)
    assert_one_clear_line(code, err, "(32, 32, 3, N)")


@pytest.fixture
def trained_run(tmp_path, capsys):
    root = write_npz(tmp_path / "data")
    run_dir = tmp_path / "run"
    code, _ = run_cli(["train", "--data-root", str(root), "--run-dir", str(run_dir), "--max-steps", "2", *TINY],
                      capsys)
    assert code == 0
    return root, run_dir


def test_resume_with_a_different_model_lists_the_differing_keys(trained_run, tmp_path, capsys):
    root, run_dir = trained_run
    before = snapshot(tmp_path)
    argv = ["train", "--data-root", str(root), "--run-dir", str(run_dir), "--resume", "--max-steps", "4", *TINY]
    argv[argv.index("--latent-dim") + 1] = "16"
    argv += ["--lr", "0.001"]
    code, err = run_cli(argv, capsys)
    assert_one_clear_line(code, err, "latent_dim: saved 8, requested 16", "lr: saved 0.0002, requested 0.001")
    assert snapshot(tmp_path) == before


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(__file__).parent / "EXPLOITED",))


def test_a_pickled_object_in_place_of_a_checkpoint_is_not_executed(trained_run, tmp_path, capsys):
    root, run_dir = trained_run
    marker = Path(__file__).parent / "EXPLOITED"
    marker.unlink(missing_ok=True)
    for path in (run_dir / "checkpoints").glob("step_*.pt"):
        path.write_bytes(pickle.dumps(_Exploit()))
        path.with_suffix(".sha256").unlink()
    before = snapshot(tmp_path)
    code, err = run_cli(["train", "--data-root", str(root), "--run-dir", str(run_dir), "--resume",
                         "--max-steps", "4", *TINY], capsys)
    assert not marker.exists()
    assert_one_clear_line(code, err, "can be loaded")
    assert snapshot(tmp_path) == before
    code, err = run_cli(["eval", str(run_dir), "--data-root", str(root)], capsys)
    assert not marker.exists()
    assert_one_clear_line(code, err, "no loadable checkpoint")


def test_starting_into_a_used_run_folder_without_resume(trained_run, tmp_path, capsys):
    root, run_dir = trained_run
    before = snapshot(tmp_path)
    code, err = run_cli(["train", "--data-root", str(root), "--run-dir", str(run_dir), *TINY], capsys)
    assert_one_clear_line(code, err, "not empty", "--resume")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, fragments", [
    (["train", "--condition", "no-rme"], ["no-rme", "did you mean 'no-rem'"]),
    (["train", "--dataset", "cifar"], ["cifar", "did you mean 'cifar10'"]),
    (["train", "--epoch", "3"], ["--epoch", "did you mean '--epochs'"]),
    (["train", "--epochs", "0"], ["--epochs", "at least 1"]),
    (["train", "--epochs", "-2"], ["--epochs"]),
    (["train", "--batch-size", "0"], ["--batch-size"]),
    (["train", "--lr", "0"], ["--lr", "positive"]),
    (["train", "--lr", "-1e-3"], ["--lr"]),
    (["train", "--max-steps", "0"], ["--max-steps", "at least 1"]),
    (["sweep", "--conditions", "pad,wake_only"], ["wake_only", "did you mean 'wake-only'"]),
    (["sweep", "--datasets", "svhm"], ["svhm", "did you mean 'svhn'"]),
])
def test_bad_options(argv, fragments, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(argv, capsys)
    assert_one_clear_line(code, err, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_run_folder(tmp_path, capsys):
    root = write_npz(tmp_path / "data")
    code, err = run_cli(["train", "--data-root", str(root), "--run-dir", "/proc/padream-run", *TINY], capsys)
    assert_one_clear_line(code, err, "/proc/padream-run", "not writable")


def test_run_folder_that_is_a_file(tmp_path, capsys):
    root = write_npz(tmp_path / "data")
    target = tmp_path / "run"
    target.write_text("keep me")
    code, err = run_cli(["train", "--data-root", str(root), "--run-dir", str(target), *TINY], capsys)
    assert_one_clear_line(code, err, "not a folder")
    assert target.read_text() == "keep me"


def test_missing_data_names_the_paths_tried(tmp_path, capsys):
    code, err = run_cli(["train", "--data-root", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "run"),
                         *TINY], capsys)
    assert_one_clear_line(code, err, "tried:", str(tmp_path / "nowhere" / "cifar10" / "train.npz"), "--data-root")
    assert not (tmp_path / "run").exists()



def test_evaluating_a_missing_run_folder_says_so(tmp_path, capsys):
    code, err = run_cli(["eval", str(tmp_path / "nowhere")], capsys)
    assert_one_clear_line(code, err, "nowhere", "does not exist")
