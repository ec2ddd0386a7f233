import pytest

from padream.report.aggregate import aggregate, collect_runs
from padream.report.claims import DOES_NOT_SHOW, NOT_MEASURED, SHOWS, check_claims, exceeds
from padream.report.paper import CLAIMS, TABLE1, table1_value

# condition -> (read-out accuracies per seed, intra/inter, clean-occluded/inter, occlusion curve)
STUDY = {
    "pad": ([0.58, 0.59, 0.57, 0.58], 0.50, 0.20, [0.6, 0.5, 0.4, 0.1]),
    "no-rem": ([0.46, 0.45, 0.47, 0.46], 0.90, 0.25, [0.45, 0.40, 0.30, 0.1]),
    "no-memory-mix": ([0.57, 0.60, 0.56, 0.59], None, None, None),
    "no-nrem": ([0.58, 0.58, 0.59, 0.57], 0.70, 0.60, [0.6, 0.3, 0.15, 0.1]),
}


@pytest.fixture
def summary(tmp_path, write_run, row):
    for condition, (accuracies, ratio, clean_occluded, occlusion) in STUDY.items():
        for seed, acc in enumerate(accuracies):
            evals = {}
            if ratio is not None:
                evals["distance"] = {"distance/intra_inter_ratio": ratio + 0.001 * seed,
                                     "distance/clean_occluded_inter_ratio": clean_occluded + 0.001 * seed}
                evals["occlusion"] = {"occlusion/probabilities": [0.0, 0.3, 0.6, 1.0],
                                      "occlusion/test_acc": [a + 0.002 * seed for a in occlusion]}
            if condition == "pad":
                evals["fid"] = {"fid/nrem": 50.0 + seed, "fid/samples": 1000}
            write_run(tmp_path, "cifar10", condition, seed, [row(1, acc - 0.1), row(2, acc)], evals)
    for seed in range(2):
        write_run(tmp_path, "cifar10", "untrained", seed,
                  evals={"d": {"distance/intra_inter_ratio": 0.95 + 0.01 * seed, "fid/nrem": 300.0 + seed}})
    write_run(tmp_path, "svhn", "pad", 0, [row(1, 0.5)])
    return aggregate(collect_runs(tmp_path))


def verdicts(claims, dataset):
    return {c["id"]: c["verdict"] for c in claims if c["dataset"] == dataset}


def test_paper_values_are_the_appendix_table():
    assert TABLE1["cifar10"]["pad"] == (58.25, 0.70) and TABLE1["svhn"]["no-memory-mix"] == (60.87, 5.07)
    assert set(TABLE1["cifar10"]) == {"pad", "no-memory-mix", "no-rem", "no-nrem", "wake-only"}
    assert table1_value("svhn", "wake-only") == pytest.approx({"mean": 0.4193, "sem": 0.0065, "n": 4, "epochs": 50})
    assert table1_value("svhn", "rem-before-nrem") is None


def test_exceeds_needs_a_difference_beyond_the_combined_sem():
    assert exceeds({"mean": 0.6, "sem": 0.01}, {"mean": 0.5, "sem": 0.01})
    assert not exceeds({"mean": 0.52, "sem": 0.03}, {"mean": 0.5, "sem": 0.03})
    assert not exceeds({"mean": 0.5, "sem": 0.0}, {"mean": 0.6, "sem": 0.0})
    assert exceeds({"mean": 0.51, "sem": None}, {"mean": 0.5, "sem": 0.1})  # one seed: direction only


def test_every_claim_gets_a_verdict_backed_by_our_numbers(summary):
    claims = check_claims(summary)
    assert [c["id"] for c in claims if c["dataset"] == "cifar10"] == list(CLAIMS)
    assert verdicts(claims, "cifar10") == {
        "rem-separability": SHOWS,
        "memory-mix-separability": DOES_NOT_SHOW,  # 58.0 vs 58.0: no difference at all
        "nrem-occlusion": SHOWS,
        "intra-inter-pad-lowest": SHOWS,
        "intra-inter-no-rem-highest": SHOWS,
        "intra-inter-no-rem-untrained": SHOWS,
        "clean-occluded-no-nrem-highest": SHOWS,
        "fid-decreases": SHOWS,
    }
    evidence = {c["id"]: c["evidence"] for c in claims if c["dataset"] == "cifar10"}
    assert "PAD 58.00 ± 0.41 (4 seeds, epoch 2) %" in evidence["rem-separability"]
    assert "PAD is higher at 2 of 2 partial occlusion levels" in evidence["nrem-occlusion"]
    assert "NREM FID untrained" in evidence["fid-decreases"]


def test_missing_measurements_are_not_measured_and_single_seeds_are_said(summary):
    claims = check_claims(summary)
    svhn = verdicts(claims, "svhn")
    assert set(svhn.values()) == {NOT_MEASURED}
    rem = next(c for c in claims if c["dataset"] == "svhn" and c["id"] == "rem-separability")
    assert "w/o REM" in rem["evidence"]


def test_a_reversed_ordering_does_not_show(summary):
    groups = summary["datasets"]["cifar10"]
    groups["pad"]["eval"]["distance/intra_inter_ratio"]["mean"] = 0.99
    claims = verdicts(check_claims(summary), "cifar10")
    assert claims["intra-inter-pad-lowest"] == DOES_NOT_SHOW
    del groups["untrained"]
    claims = check_claims(summary)
    assert verdicts(claims, "cifar10")["intra-inter-no-rem-untrained"] == NOT_MEASURED
    assert verdicts(claims, "cifar10")["fid-decreases"] == NOT_MEASURED


def test_an_ordering_over_a_condition_not_run_is_not_measured(summary):
    del summary["datasets"]["cifar10"]["no-rem"]
    claim = next(c for c in check_claims(summary) if c["id"] == "intra-inter-pad-lowest")
    assert claim["verdict"] == NOT_MEASURED
    assert "the ordering holds among these, but w/o REM not measured" in claim["evidence"]
