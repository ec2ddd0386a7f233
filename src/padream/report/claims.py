"""Check the paper's qualitative claims against the aggregated summary.

A claim 'shows at this budget' when the ordering the paper reports holds for our means *and* each
difference it rests on exceeds the combined SEM sqrt(SEM_a^2 + SEM_b^2) -- about one standard error of
the difference, a deliberately modest bar and not a significance test. With one seed there is no SEM, so
only the direction is checked and the evidence says so. A claim that needs a condition the study did not
run is 'not measured', even when the conditions that were run order as the paper says; an ordering that
already fails among the measured conditions 'does not show'.
"""

from __future__ import annotations

import math
from typing import Any

from padream.experiments.grid import UNTRAINED
from padream.report.aggregate import condition_label, final_readout
from padream.report.paper import CLAIMS

SHOWS = "shows at this budget"
DOES_NOT_SHOW = "does not show"
NOT_MEASURED = "not measured"


def combined_sem(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if a.get("sem") is None or b.get("sem") is None:
        return None
    return math.hypot(a["sem"], b["sem"])


def exceeds(high: dict[str, Any], low: dict[str, Any]) -> bool:
    """high's mean is above low's, by more than the combined SEM when both have one."""
    difference = high["mean"] - low["mean"]
    sem = combined_sem(high, low)
    return difference > 0 and (sem is None or difference > sem)


def describe(stat: dict[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """'58.25 ± 0.70 (4 seeds, epoch 50)'; '± n/a' for one seed."""
    sem = "n/a" if stat.get("sem") is None else f"{stat['sem'] * scale:.{digits}f}"
    epochs = sorted({e for e in stat.get("epochs", []) if e is not None})
    when = "" if not epochs else (f", epoch {epochs[0]}" if len(epochs) == 1 else
                                  f", epochs {epochs[0]}-{epochs[-1]}")
    n = stat["n"]
    return f"{stat['mean'] * scale:.{digits}f} ± {sem} ({n} seed{'s' if n != 1 else ''}{when})"


def _result(claim_id: str, dataset: str, verdict: str, evidence: str) -> dict[str, str]:
    return {"id": claim_id, "source": CLAIMS[claim_id]["source"], "claim": CLAIMS[claim_id]["claim"],
            "dataset": dataset, "verdict": verdict, "evidence": evidence}


def _single_seed_note(stats: list[dict[str, Any]]) -> str:
    return " One seed on at least one side: direction only, no error estimate." \
        if any(s.get("sem") is None for s in stats) else ""


def _ordered(claim_id: str, dataset: str, stats: dict[str, dict[str, Any]], wanted: tuple[str, ...],
             highest: bool, what: str, scale: float = 1.0, unit: str = "", digits: int = 3) -> dict[str, str]:
    """Is wanted[0] above (highest=True) or below every other measured condition of `wanted`, beyond the SEM?"""
    subject = wanted[0]
    others = [c for c in wanted[1:] if c in stats]
    missing = [condition_label(c) for c in wanted if c not in stats]
    if subject not in stats or not others:
        return _result(claim_id, dataset, NOT_MEASURED, f"{what}: no data for {', '.join(missing)}.")
    holds = all(exceeds(stats[subject], stats[o]) if highest else exceeds(stats[o], stats[subject])
                for o in others)
    values = "; ".join(f"{condition_label(c)} {describe(stats[c], scale, digits)}{unit}" for c in [subject, *others])
    note = _single_seed_note([stats[c] for c in [subject, *others]])
    if not holds:
        return _result(claim_id, dataset, DOES_NOT_SHOW, f"{what}: {values}.{note}")
    if missing:  # an ordering over conditions we did not run is not shown by the ones we did
        return _result(claim_id, dataset, NOT_MEASURED, f"{what}: {values}; the ordering holds among these, but "
                                                        f"{', '.join(missing)} not measured.{note}")
    return _result(claim_id, dataset, SHOWS, f"{what}: {values}.{note}")


def _readouts(groups: dict[str, Any], conditions: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    found = {}
    for condition in conditions:
        if condition in groups:
            stat, _ = final_readout(groups[condition])
            if stat is not None:
                found[condition] = stat
    return found


def _eval_stats(groups: dict[str, Any], conditions: tuple[str, ...], key: str) -> dict[str, dict[str, Any]]:
    return {c: groups[c]["eval"][key] for c in conditions if c in groups and key in groups[c]["eval"]}


def _occlusion_claim(dataset: str, groups: dict[str, Any]) -> dict[str, str]:
    claim_id = "nrem-occlusion"
    curves = {c: groups[c]["occlusion"] for c in ("pad", "no-nrem")
              if c in groups and groups[c]["occlusion"] and "partial_mean_test_acc" in groups[c]["occlusion"]}
    if len(curves) < 2:
        return _result(claim_id, dataset, NOT_MEASURED, "occlusion read-out missing for PAD or w/o NREM.")
    pad, no_nrem = curves["pad"], curves["no-nrem"]
    stats = {c: curves[c]["partial_mean_test_acc"] for c in curves}
    holds = exceeds(stats["pad"], stats["no-nrem"])
    evidence = (f"mean read-out accuracy over occlusion probabilities strictly between 0 and 1 (%): "
                f"PAD {describe(stats['pad'], 100)}; w/o NREM {describe(stats['no-nrem'], 100)}.")
    if pad["probabilities"] == no_nrem["probabilities"] and "test_acc" in pad and "test_acc" in no_nrem:
        levels = [i for i, p in enumerate(pad["probabilities"]) if 0 < p < 1]
        higher = sum(pad["test_acc"]["mean"][i] > no_nrem["test_acc"]["mean"][i] for i in levels)
        evidence += f" PAD is higher at {higher} of {len(levels)} partial occlusion levels."
    return _result(claim_id, dataset, SHOWS if holds else DOES_NOT_SHOW,
                   evidence + _single_seed_note(list(stats.values())))


def _untrained_claim(dataset: str, groups: dict[str, Any]) -> dict[str, str]:
    claim_id = "intra-inter-no-rem-untrained"
    stats = _eval_stats(groups, ("pad", "no-rem", UNTRAINED), "distance/intra_inter_ratio")
    missing = [condition_label(c) for c in ("pad", "no-rem", UNTRAINED) if c not in stats]
    if missing:
        return _result(claim_id, dataset, NOT_MEASURED, f"intra/inter ratio missing for {', '.join(missing)}.")
    untrained = stats[UNTRAINED]["mean"]
    to_untrained = abs(stats["no-rem"]["mean"] - untrained)
    to_pad = abs(stats["no-rem"]["mean"] - stats["pad"]["mean"])
    holds = to_untrained < to_pad
    values = "; ".join(f"{condition_label(c)} {describe(stats[c], digits=3)}" for c in (UNTRAINED, "no-rem", "pad"))
    return _result(claim_id, dataset, SHOWS if holds else DOES_NOT_SHOW,
                   f"intra/inter ratio: {values}. w/o REM is {to_untrained:.3f} from untrained and "
                   f"{to_pad:.3f} from PAD (the claim holds when it is closer to untrained).")


def _fid_claim(dataset: str, groups: dict[str, Any]) -> dict[str, str]:
    """Compared along PAD's logged FID curve when there is one, else untrained (epoch 0) vs trained."""
    claim_id = "fid-decreases"
    pad = groups.get("pad")
    if pad is None:
        return _result(claim_id, dataset, NOT_MEASURED, "no PAD runs.")
    findings, decreases = [], []
    for kind in ("nrem", "rem"):
        key = f"fid/{kind}"
        curve = pad["curves"].get(key)
        if curve and len(curve["epochs"]) >= 2:
            first, last = curve["mean"][0], curve["mean"][-1]
            decreases.append(last < first)
            findings.append(f"{kind.upper()} FID {first:.1f} at epoch {curve['epochs'][0]} -> {last:.1f} at "
                            f"epoch {curve['epochs'][-1]}")
            continue
        trained = pad["eval"].get(key)
        untrained = groups.get(UNTRAINED, {}).get("eval", {}).get(key) if UNTRAINED in groups else None
        if trained and untrained:
            decreases.append(exceeds(untrained, trained))
            findings.append(f"{kind.upper()} FID untrained {describe(untrained, digits=1)} -> PAD "
                            f"{describe(trained, digits=1)}")
    if not findings:
        return _result(claim_id, dataset, NOT_MEASURED,
                       "needs FID at two points of training (a logged FID curve, or PAD and untrained FID).")
    return _result(claim_id, dataset, SHOWS if all(decreases) else DOES_NOT_SHOW, "; ".join(findings) + ".")


def check_claims(summary: dict[str, Any]) -> list[dict[str, str]]:
    """One verdict per (dataset, claim), in the order of paper.CLAIMS."""
    results = []
    readout = dict(scale=100, unit=" %", digits=2)
    for dataset, groups in summary["datasets"].items():
        readouts = _readouts(groups, ("pad", "no-rem", "no-memory-mix"))
        ratio = _eval_stats(groups, ("pad", "no-rem", "no-nrem", UNTRAINED), "distance/intra_inter_ratio")
        clean_occluded = _eval_stats(groups, ("pad", "no-rem", "no-nrem"), "distance/clean_occluded_inter_ratio")
        results += [
            _ordered("rem-separability", dataset, readouts, ("pad", "no-rem"), True, "read-out test accuracy",
                     **readout),
            _ordered("memory-mix-separability", dataset, readouts, ("pad", "no-memory-mix"), True,
                     "read-out test accuracy", **readout),
            _occlusion_claim(dataset, groups),
            _ordered("intra-inter-pad-lowest", dataset, ratio, ("pad", "no-rem", "no-nrem", UNTRAINED), False,
                     "intra/inter ratio"),
            _ordered("intra-inter-no-rem-highest", dataset, ratio, ("no-rem", "pad", "no-nrem"), True,
                     "intra/inter ratio (trained models)"),
            _untrained_claim(dataset, groups),
            _ordered("clean-occluded-no-nrem-highest", dataset, clean_occluded, ("no-nrem", "pad", "no-rem"), True,
                     "clean-occluded/inter ratio"),
            _fid_claim(dataset, groups),
        ]
    return results
