"""Train a tiny study (2 conditions x 2 seeds, 2 epochs), add evaluation files, and report on it via the CLI."""

import json

import numpy as np
import pytest

from padream.cli import main
from padream.experiments.grid import make_grid, run_sequential

from .test_render import is_png

TINY = dict(latent_dim=8, base_channels=4, batch_size=8, epochs=2, probe_epochs=1, device="cpu", precision="fp32")
EXPECTED = ("summary.json", "runs.csv", "report.md", "report.html", "fig4c_linear_separability.png",
            "fig5c_occlusion.png", "fig6bcd_pca.png", "fig6e_intra_inter.png", "fig6f_clean_occluded.png",
            "appendix_fig1_losses_cifar10.png", "appendix_fig3_all_conditions.png")


def write_eval(run_dir, seed: int, shift: float) -> None:
    """Evaluation results as the suite writes them: flat JSON objects in RUN_DIR/eval/."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(40, 2)).round(3).tolist()
    files = {
        "occlusion": {"occlusion/probabilities": [0.0, 0.3, 0.6, 1.0], "occlusion/size": 4,
                      "occlusion/test_acc": [0.3, 0.25 - shift, 0.2 - shift, 0.1]},
        "distance": {"distance/intra": 1.0, "distance/inter": 1.2, "distance/intra_inter_ratio": 0.8 + shift,
                     "distance/clean_occluded": 0.4, "distance/clean_occluded_inter_ratio": 0.33 + shift},
        "pca": {"pca/points": points, "pca/labels": [i % 4 for i in range(40)],
                "pca/occluded": [i >= 20 for i in range(40)], "pca/explained_variance": [0.5, 0.2]},
    }
    (run_dir / "eval").mkdir(exist_ok=True)
    for name, values in files.items():
        (run_dir / "eval" / f"{name}.json").write_text(json.dumps(values))


@pytest.mark.slow
def test_report_on_a_tiny_trained_study(tmp_path, write_npz_dataset, capsys):
    root = write_npz_dataset(tmp_path / "data", train=160, test=50)
    runs = tmp_path / "runs"
    cells = make_grid(["cifar10"], ["pad", "no-nrem"], [0, 1])
    results = run_sequential(cells, runs, TINY, data_root=str(root), evaluate=False, log=lambda line: None)
    assert [r["status"] for r in results] == ["done"] * 4
    for cell in cells:
        write_eval(cell.run_dir(runs), cell.seed, 0.0 if cell.condition == "pad" else 0.05)

    out = tmp_path / "report"
    assert main(["report", str(runs), "--out", str(out)]) == 0
    assert "report: 4 runs" in capsys.readouterr().out
    for name in EXPECTED:
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert is_png(png), png.name

    summary = json.loads((out / "summary.json").read_text())
    pad = summary["datasets"]["cifar10"]["pad"]
    readout = pad["final"]["probe/test_acc"]
    assert readout["n"] == 2 and readout["epochs"] == [2, 2]
    metrics = [json.loads(line) for seed in (0, 1)
               for line in (runs / "cifar10" / "pad" / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()]
    assert readout["mean"] == pytest.approx(np.mean([m["probe/test_acc"] for m in metrics if m["epoch"] == 2]))

    page = (out / "report.html").read_text()
    assert "58.25 ± 0.70" in page  # the paper's CIFAR-10 PAD value ...
    sem = "n/a" if readout["sem"] is None else f"{100 * readout['sem']:.2f}"
    assert f"{100 * readout['mean']:.2f} ± {sem} (2 seeds, 2 epochs)" in page  # ... beside ours
    assert page.count("data:image/png;base64,") == 7
    markdown = (out / "report.md").read_text()
    assert "| CIFAR-10 | PAD | 0, 1 | 2, 2 | 2 | 160 | 8 / 4 | 2 of 2 |" in markdown
    assert "fig3d_fid: no FID" in markdown
    assert "NREM is needed for occlusion robustness" in markdown

    with open(out / "runs.csv") as handle:
        assert len(handle.read().splitlines()) == 5


def test_report_command_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("padream: error:") and "is not a folder" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no run folders" in capsys.readouterr().err
