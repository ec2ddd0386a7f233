import json

import pytest

from padream.cli import main
from padream.eval.fid import WEIGHTS_ENV

TINY = ["--epochs", "1", "--batch-size", "8", "--probe-epochs", "1", "--latent-dim", "8", "--base-channels", "4",
        "--device", "cpu", "--precision", "fp32", "--no-progress"]


@pytest.fixture
def run_dir(tmp_path, npz_root):
    folder = tmp_path / "run"
    assert main(["train", "--data-root", str(npz_root), "--run-dir", str(folder), *TINY]) == 0
    return folder


def test_evaluate_writes_the_chosen_files_and_prints_a_summary(run_dir, npz_root, capsys, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    capsys.readouterr()
    code = main(["evaluate", str(run_dir), "--data-root", str(npz_root), "--device", "cpu",
                 "--only", "distances,linear_probe"])
    assert code == 0
    assert sorted(p.name for p in (run_dir / "eval").iterdir()) == ["distances.json", "linear_probe.json"]
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("read-out (SGD): test ") and out[1].startswith("distances: intra/inter ")
    probe = json.loads((run_dir / "eval" / "linear_probe.json").read_text())
    assert f"{100 * probe['probe/test_acc']:.2f}%" in out[0]


@pytest.mark.parametrize("argv, message", [
    (["--only", "distance"], "did you mean 'distances'"),
    (["--only", ","], "--only is empty"),
    (["--only", "fid"], f"{WEIGHTS_ENV} is not set"),
])
def test_evaluate_errors_are_one_line(argv, message, run_dir, npz_root, capsys, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--data-root", str(npz_root), "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("padream: error:") and message in err[0]
    assert not (run_dir / "eval").exists()
