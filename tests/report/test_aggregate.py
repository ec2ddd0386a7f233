import csv
import json
import math

import numpy as np
import pytest

from padream.report.aggregate import (ReportError, aggregate, collect_runs, final_readout, mean_sem, normalize_pca,
                                      read_summary, write_runs_csv, write_summary)

OCCLUSION = {"occlusion/probabilities": [0.0, 0.5, 1.0], "occlusion/size": 4}


def sem(values):
    return np.std(values, ddof=1) / math.sqrt(len(values))


@pytest.fixture
def study(tmp_path, write_run, row):
    """PAD x 3 seeds (one with a trailing partial epoch), w/o REM x 1 seed with only a partial epoch,
    w/o NREM x 2 seeds of different lengths, untrained x 2 seeds with evaluation only."""
    runs = tmp_path / "runs"
    accuracies = {0: [0.2, 0.3, 0.5], 1: [0.2, 0.4, 0.6], 2: [0.3, 0.4, 0.7]}
    occlusion = {0: [0.6, 0.4, 0.1], 1: [0.8, 0.5, 0.1]}
    for seed, accs in accuracies.items():
        rows = [row(e, a) for e, a in enumerate(accs, 1)]
        if seed == 2:
            rows.append(row(4, 0.9, partial=True))
        evals = {"distance": {"distance/intra_inter_ratio": 0.5 + 0.1 * seed, "distance/intra": 1.0},
                 "readout": {"converged": {"test_acc": 0.6 + 0.1 * seed}}}
        if seed in occlusion:
            evals["occlusion"] = {**OCCLUSION, "occlusion/test_acc": occlusion[seed]}
        else:  # another grid: must be left out of the pointwise mean, with a flag
            evals["occlusion"] = {"occlusion/probabilities": [0.0, 0.25, 0.5, 1.0],
                                  "occlusion/test_acc": [0.9, 0.8, 0.7, 0.1]}
        if seed >= 1:
            evals["pca"] = {"points": [[seed, 0.0], [0.0, seed], [1.0, 1.0], [2.0, 2.0]],
                            "labels": [0, 1, 0, 1], "occluded": [False, False, True, True],
                            "explained_variance": [0.4, 0.2]}
        write_run(runs, "cifar10", "pad", seed, rows, evals)
    write_run(runs, "cifar10", "no-rem", 0, [row(1, 0.15, partial=True)], done=False)
    write_run(runs, "cifar10", "no-nrem", 0, [row(e, 0.1 * e) for e in (1, 2, 3)])
    write_run(runs, "cifar10", "no-nrem", 1, [row(e, 0.1 * e + 0.1) for e in (1, 2)])
    for seed in (0, 1):
        write_run(runs, "cifar10", "untrained", seed,
                  evals={"probe": {"probe/test_acc": 0.1 + 0.02 * seed, "distance/intra_inter_ratio": 0.9}})
    return runs


def test_mean_sem_is_the_sample_standard_error_and_none_for_one_value():
    result = mean_sem([1.0, 2.0, 3.0, 4.0])
    assert result["mean"] == 2.5 and result["n"] == 4
    assert result["std"] == pytest.approx(math.sqrt(5 / 3), rel=1e-12)
    assert result["sem"] == pytest.approx(math.sqrt(5 / 3) / 2, rel=1e-12)
    assert mean_sem([0.7]) == {"mean": 0.7, "std": None, "sem": None, "n": 1}
    with pytest.raises(ValueError):
        mean_sem([])


def test_runs_are_found_in_the_study_layout(study):
    runs = collect_runs(study)
    assert [(r["condition"], r["seed"]) for r in runs] == [
        ("untrained", 0), ("untrained", 1), ("pad", 0), ("pad", 1), ("pad", 2), ("no-rem", 0), ("no-nrem", 0),
        ("no-nrem", 1)]
    untrained = runs[0]
    assert untrained["final"] is None and untrained["eval_epoch"] == 0 and untrained["history"] == []


def test_final_metrics_are_the_last_complete_epoch_averaged_exactly(study):
    summary = aggregate(collect_runs(study), study)
    pad = summary["datasets"]["cifar10"]["pad"]
    final = pad["final"]["probe/test_acc"]
    assert final["mean"] == pytest.approx(0.6, abs=1e-15)  # seed 2's partial epoch 4 (0.9) is ignored
    assert final["sem"] == pytest.approx(sem([0.5, 0.6, 0.7]), rel=1e-12)
    assert final["std"] == pytest.approx(0.1, rel=1e-12)
    assert final["seeds"] == [0, 1, 2] and final["epochs"] == [3, 3, 3] and final["n"] == 3
    assert pad["final_epochs"] == [3, 3, 3] and pad["final_partial_seeds"] == []
    assert final_readout(pad) == (final, "final")
    assert "epoch" not in pad["final"] and "step" not in pad["final"]


def test_a_run_without_a_complete_epoch_uses_its_partial_row_and_is_flagged(study):
    no_rem = aggregate(collect_runs(study))["datasets"]["cifar10"]["no-rem"]
    stat = no_rem["final"]["probe/test_acc"]
    assert stat["mean"] == 0.15 and stat["sem"] is None and stat["n"] == 1
    assert no_rem["final_partial_seeds"] == [0]
    assert any("partial epoch" in flag for flag in no_rem["flags"])
    assert any("done.json" in flag for flag in no_rem["flags"])


def test_curves_average_each_epoch_over_the_seeds_that_reached_it(study):
    summary = aggregate(collect_runs(study))
    pad = summary["datasets"]["cifar10"]["pad"]["curves"]["probe/test_acc"]
    assert pad["epochs"] == [1, 2, 3] and pad["n"] == [3, 3, 3]
    assert pad["mean"][0] == pytest.approx(np.mean([0.2, 0.2, 0.3]), rel=1e-12)
    assert pad["sem"][1] == pytest.approx(sem([0.3, 0.4, 0.4]), rel=1e-12)
    no_nrem = summary["datasets"]["cifar10"]["no-nrem"]
    curve = no_nrem["curves"]["probe/test_acc"]
    assert curve["epochs"] == [1, 2, 3] and curve["n"] == [2, 2, 1] and curve["sem"][2] is None
    assert curve["mean"][2] == pytest.approx(0.3)
    assert set(no_nrem["curves"]) >= {"loss/wake_rec", "loss/wake_kl", "probe/train_acc", "probe/test_acc_last5"}
    assert any("different epochs" in flag for flag in no_nrem["flags"])
    # Different lengths: the final read-out names the epoch behind each seed.
    assert no_nrem["final"]["probe/test_acc"]["epochs"] == [3, 2]
    assert no_nrem["final"]["probe/test_acc"]["mean"] == pytest.approx(0.3)


def test_evaluation_files_merge_and_aggregate(study):
    summary = aggregate(collect_runs(study))
    pad = summary["datasets"]["cifar10"]["pad"]
    ratio = pad["eval"]["distance/intra_inter_ratio"]
    assert ratio["mean"] == pytest.approx(0.6) and ratio["sem"] == pytest.approx(sem([0.5, 0.6, 0.7]), rel=1e-12)
    assert ratio["epochs"] == [3, 3, 4]  # seed 2 was evaluated on the checkpoint of its partial epoch
    assert pad["eval"]["converged/test_acc"]["mean"] == pytest.approx(0.7)  # nested keys are flattened
    untrained = summary["datasets"]["cifar10"]["untrained"]
    assert untrained["eval"]["probe/test_acc"]["mean"] == pytest.approx(0.11)
    assert untrained["eval"]["probe/test_acc"]["epochs"] == [0, 0]
    assert final_readout(untrained)[1] == "eval"


def test_occlusion_curves_average_pointwise_over_seeds_with_one_grid(study):
    occlusion = aggregate(collect_runs(study))["datasets"]["cifar10"]["pad"]["occlusion"]
    assert occlusion["probabilities"] == [0.0, 0.5, 1.0] and occlusion["seeds"] == [0, 1]
    assert occlusion["test_acc"]["mean"] == pytest.approx([0.7, 0.45, 0.1])
    assert occlusion["test_acc"]["sem"][1] == pytest.approx(sem([0.4, 0.5]), rel=1e-12)
    assert occlusion["partial_mean_test_acc"]["mean"] == pytest.approx(0.45)
    flags = aggregate(collect_runs(study))["datasets"]["cifar10"]["pad"]["flags"]
    assert any("seed 2: occlusion probabilities differ" in flag for flag in flags)


def test_pca_of_the_lowest_seed_that_has_it(study):
    pca = aggregate(collect_runs(study))["datasets"]["cifar10"]["pad"]["pca"]
    assert pca["seed"] == 1 and pca["epoch"] == 3
    assert pca["points"][0] == [1.0, 0.0] and pca["labels"] == [0, 1, 0, 1]
    assert pca["occluded"] == [False, False, True, True] and pca["explained_variance"] == [0.4, 0.2]


def test_pca_reader_accepts_separate_clean_and_occluded_arrays():
    view = normalize_pca({"pca/clean": [[0, 0], [1, 1]], "pca/occluded": [[0, 1], [1, 2]], "pca/labels": [3, 4],
                          "pca/explained_variance_ratio": [0.5, 0.1]})
    assert view["points"] == [[0, 0], [1, 1], [0, 1], [1, 2]]
    assert view["labels"] == [3, 4, 3, 4] and view["occluded"] == [False, False, True, True]
    view = normalize_pca({"pca/projection": [[0, 0, 9], [1, 1, 9]], "pca/classes": [1, 2]})
    assert view["points"] == [[0, 0], [1, 1]] and view["occluded"] == [False, False]
    assert normalize_pca({"pca/labels": [1, 2]}) is None


def test_conflicting_eval_files_and_mismatched_folders_are_reported(tmp_path, write_run, row):
    from padream.config import make_config

    config = make_config("pad", seed=5, epochs=1).to_dict()
    write_run(tmp_path, "cifar10", "pad", 0, [row(1, 0.3)], config=config,
              evals={"a": {"distance/intra": 1.0}, "b": {"distance/intra": 2.0}})
    (run,) = collect_runs(tmp_path)
    assert run["seed"] == 5  # config.json is what was trained
    assert any("folder says cifar10/pad/0" in w for w in run["warnings"])
    assert any("distance/intra differs" in w for w in run["warnings"])
    assert run["eval"]["distance/intra"] == 2.0


def test_the_same_seed_twice_is_an_error(tmp_path, write_run, row):
    from padream.config import make_config

    write_run(tmp_path, "cifar10", "pad", 0, [row(1, 0.3)])
    write_run(tmp_path, "cifar10", "pad", 1, [row(1, 0.3)], config=make_config("pad", seed=0).to_dict())
    with pytest.raises(ReportError, match="same seed"):
        aggregate(collect_runs(tmp_path))


def test_summary_and_csv_files(study, tmp_path):
    runs = collect_runs(study)
    runs[2]["eval"]["distance/inter"] = float("nan")
    summary = aggregate(runs, study)
    path = write_summary(summary, tmp_path / "out")
    loaded = read_summary(path)  # strict JSON: NaN became null
    assert "NaN" not in path.read_text()
    assert loaded["datasets"]["cifar10"]["pad"]["final"]["probe/test_acc"]["n"] == 3
    assert loaded["sem"].startswith("std(ddof=1)")
    assert len(loaded["runs"]) == 8
    with write_runs_csv(runs, tmp_path / "out").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8
    pad1 = next(r for r in rows if r["condition"] == "pad" and r["seed"] == "1")
    assert float(pad1["final:probe/test_acc"]) == 0.6 and pad1["final_epoch"] == "3"
    assert json.loads(pad1["eval:occlusion/test_acc"]) == [0.8, 0.5, 0.1]
    assert not any(column.startswith("eval:pca") for column in rows[0])


def test_an_empty_or_missing_folder(tmp_path):
    with pytest.raises(ReportError):
        collect_runs(tmp_path / "nope")
    assert collect_runs(tmp_path) == []
