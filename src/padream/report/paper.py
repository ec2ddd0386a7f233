"""The paper's reference results as data (Deperrois et al., eLife 2022; doi:10.7554/eLife.76384).

Kept apart from the code that computes ours, so that a comparison can never quietly adjust the
reference. Numbers are transcribed from Appendix 1—table 1; claims paraphrase the Results text and are
what `padream.report.claims` checks our numbers against.
"""

from __future__ import annotations

CITATION = ("Deperrois, Petrovici, Senn, Jordan (2022). Learning cortical representations through perturbed "
            "and adversarial dreaming. eLife 11:e76384")

# How the paper's numbers were obtained (Appendix 1—table 1, Methods 'Linear separability').
SEEDS = 4
EPOCHS = 50
READOUT = "SGD, lr 0.2, batch 64, 20 epochs, accuracy of the final weights"

# Linear read-out test accuracy in percent at epoch 50: (mean, SEM over 4 seeds), Appendix 1—table 1.
TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "cifar10": {
        "pad": (58.25, 0.70),
        "no-memory-mix": (53.87, 0.85),
        "no-rem": (46.00, 0.43),
        "no-nrem": (58.00, 0.34),
        "wake-only": (42.25, 0.54),
    },
    "svhn": {
        "pad": (78.92, 0.40),
        "no-memory-mix": (60.87, 5.07),
        "no-rem": (42.30, 1.51),
        "no-nrem": (73.25, 0.22),
        "wake-only": (41.93, 0.65),
    },
}

DATASET_LABELS = {"cifar10": "CIFAR-10", "svhn": "SVHN"}

# The paper's occlusion read-out uses squares of size 4 (Methods, 'Linear separability') and its
# PCA and clean-occluded distances use 30% occlusion (Figure 6).
OCCLUSION_SQUARE_SIZE = 4
PCA_OCCLUSION_PROBABILITY = 0.3

# Qualitative claims: id -> (where in the paper, the claim in a sentence).
CLAIMS: dict[str, dict[str, str]] = {
    "rem-separability": {
        "source": "Fig. 4c,d; Appendix 1—table 1",
        "claim": "REM is needed for linear separability: without REM the read-out accuracy stays below PAD.",
    },
    "memory-mix-separability": {
        "source": "Fig. 4c,d; Appendix 1—table 1",
        "claim": "REM driven by single memories without noise (w/o memory mix) gives a lower read-out "
                 "accuracy than PAD.",
    },
    "nrem-occlusion": {
        "source": "Fig. 5c,d",
        "claim": "NREM is needed for occlusion robustness: without NREM the read-out accuracy on partially "
                 "occluded images is lower than PAD's.",
    },
    "intra-inter-pad-lowest": {
        "source": "Fig. 6e",
        "claim": "The intra/inter-class distance ratio is lowest for PAD.",
    },
    "intra-inter-no-rem-highest": {
        "source": "Fig. 6e",
        "claim": "Without REM the intra/inter-class distance ratio is the highest of the trained models.",
    },
    "intra-inter-no-rem-untrained": {
        "source": "Fig. 6e",
        "claim": "Without REM the intra/inter-class distance ratio reaches levels comparable to an untrained "
                 "network.",
    },
    "clean-occluded-no-nrem-highest": {
        "source": "Fig. 6f",
        "claim": "Without NREM the clean-occluded/inter-class distance ratio is the highest.",
    },
    "fid-decreases": {
        "source": "Fig. 3d",
        "claim": "Dreams become more realistic with training: the FID of NREM and REM dreams decreases.",
    },
}


def table1_value(dataset: str, condition: str) -> dict[str, float] | None:
    """The paper's read-out accuracy for a cell, as a fraction like ours; None where the paper has none."""
    value = TABLE1.get(dataset, {}).get(condition)
    if value is None:
        return None
    return {"mean": value[0] / 100, "sem": value[1] / 100, "n": SEEDS, "epochs": EPOCHS}
