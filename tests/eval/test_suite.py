import json

import pytest
from PIL import Image

from padream.config import ConfigError, make_config
from padream.data import load_dataset
from padream.eval import converged_probe, dreams, latent_distances, occlusion_robustness, pca
from padream.eval.fid import FIDWeightsError, WEIGHTS_ENV
from padream.eval.suite import EVALUATIONS, evaluate_run_dir, evaluate_untrained_dir, selected_evaluations
from padream.evaluate import evaluate_run
from padream.train import Trainer

EXPECTED_KEYS = {
    "linear_probe": {"probe/train_acc", "probe/test_acc", "probe/test_acc_last5"},
    "converged_probe": set(converged_probe.KEYS),
    "occlusion": set(occlusion_robustness.KEYS),
    "distances": set(latent_distances.KEYS),
    "pca": set(pca.KEYS),
    "dreams": set(dreams.KEYS),
}
META = {"checkpoint", "epoch", "step", "condition", "dataset", "seed", "untrained", "train_images", "test_images",
        "precision"}


@pytest.fixture
def trained_run(tmp_path, npz_root):
    """A one-epoch PAD run with a tiny network on 200 generated images, and its data root."""
    root = npz_root
    run_dir = tmp_path / "runs" / "pad"
    config = make_config("pad", latent_dim=8, base_channels=4, batch_size=8, epochs=1, probe_epochs=1,
                         device="cpu", precision="fp32")
    Trainer(config, run_dir, data=load_dataset("cifar10", root), progress=False, log=lambda line: None).run()
    return run_dir, root


def check_files(folder, results, untrained):
    assert set(results) == set(EXPECTED_KEYS)
    for name, keys in EXPECTED_KEYS.items():
        written = json.loads((folder / "eval" / f"{name}.json").read_text())
        assert written == results[name]
        assert keys | META | {f"seconds/{name}"} == set(written), name
        assert written["untrained"] is untrained
    assert not (folder / "eval" / "fid.json").exists()  # no weights: FID is not part of the default set


def test_every_evaluation_writes_its_file_and_a_second_call_keeps_them(trained_run, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    run_dir, root = trained_run
    messages = []
    results = evaluate_run_dir(run_dir, data_root=root, device="cpu", log=messages.append)
    check_files(run_dir, results, untrained=False)
    assert results["linear_probe"]["step"] == 25 and results["linear_probe"]["epoch"] == 1
    assert any("encoded the train split" in m for m in messages)
    # The read-out reproduces `padream eval` exactly: same latents, same RNG stream.
    reference = evaluate_run(run_dir, root, "cpu")
    for key in EXPECTED_KEYS["linear_probe"]:
        assert results["linear_probe"][key] == reference[key]
    assert results["occlusion"]["occlusion/test_acc"][0] == reference["probe/test_acc"]  # p = 0 is the clean read-out
    assert Image.open(run_dir / "eval" / "dreams.png").size == tuple(results["dreams"]["dreams/size"])

    stamps = {p.name: p.stat().st_mtime_ns for p in (run_dir / "eval").iterdir()}
    messages.clear()
    again = evaluate_run_dir(run_dir, data_root=root / "missing", device="cpu", log=messages.append)
    assert again == results  # nothing recomputed, so the data is not even loaded
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "eval").iterdir()} == stamps
    assert sum("kept" in m for m in messages) == len(EXPECTED_KEYS)

    redone = evaluate_run_dir(run_dir, data_root=root, device="cpu", which=["distances"], overwrite=True,
                              log=messages.append)
    assert set(redone) == {"distances"}
    assert redone["distances"]["distance/inter"] == results["distances"]["distance/inter"]  # same RNG stream


def test_untrained_baseline(tmp_path, image_sets, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    results = evaluate_untrained_dir(tmp_path / "untrained", "cifar10", 3, device="cpu", data=image_sets,
                                     latent_dim=8, base_channels=4, log=lambda line: None)
    check_files(tmp_path / "untrained", results, untrained=True)
    assert results["pca"]["seed"] == 3 and results["pca"]["condition"] == "untrained"


def test_selection_and_fid_errors_come_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert selected_evaluations(None) == EVALUATIONS[:-1]
    assert selected_evaluations(["pca", "linear_probe"]) == ("linear_probe", "pca")
    with pytest.raises(ConfigError, match="did you mean 'distances'"):
        selected_evaluations(["distance"])
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"")
    monkeypatch.setenv(WEIGHTS_ENV, str(weights))
    assert selected_evaluations(None) == EVALUATIONS
    with pytest.raises(FIDWeightsError, match="not found"):
        evaluate_untrained_dir(tmp_path / "u", which=["fid"], fid_weights=tmp_path / "none.pth",
                               data_root=tmp_path / "no-data", device="cpu", log=lambda line: None)
    assert not (tmp_path / "u" / "eval").exists()
