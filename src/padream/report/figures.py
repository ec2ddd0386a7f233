"""The paper's figures, redrawn from the aggregated summary alone (never from checkpoints or run folders).

Each figure function takes the summary and returns (figure, caption) or raises MissingData, so a study
that lacks, say, FID still gets every other figure and a line saying why that one is absent. Captions
name the seeds and epochs behind every curve and bar: a figure from two seeds at epoch 5 must not pass
for the paper's four seeds at epoch 50.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from padream.experiments.grid import UNTRAINED
from padream.report.aggregate import READOUT, ReportError
from padream.report.paper import DATASET_LABELS, EPOCHS, SEEDS, TABLE1

# The paper's colours: PAD black, w/o REM pink, w/o memory mix purple, w/o NREM orange, Wake only grey.
COLORS = {"pad": "black", "no-rem": "#e7298a", "no-memory-mix": "#7b3294", "no-nrem": "#f28e2b",
          "wake-only": "#8c8c8c", UNTRAINED: "#c8c8c8"}
EXTRA_COLORS = ("#1f77b4", "#2ca02c", "#d62728", "#17becf", "#bcbd22", "#8c564b")
# Figure 6b-d shows four SVHN classes in purple, cyan, yellow and red.
CLASS_COLORS = ("#6a3d9a", "#1fb4c9", "#e6c229", "#d62728")
DPI = 110


class MissingData(Exception):
    """The summary lacks what a figure needs; the message says what."""


def pyplot():
    """matplotlib.pyplot on the Agg backend, imported only when figures are drawn."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError("figures need matplotlib: pip install 'padream[report]' (or pip install matplotlib)") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def color(condition: str) -> str:
    if condition in COLORS:
        return COLORS[condition]
    return EXTRA_COLORS[sum(map(ord, condition)) % len(EXTRA_COLORS)]


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def _epochs_text(epochs: list[int | None]) -> str:
    known = sorted({e for e in epochs if e is not None})
    if not known:
        return "epoch unknown"
    return f"epoch {known[0]}" if len(known) == 1 else f"epochs {known[0]}-{known[-1]}"


def budget_text(group: dict[str, Any], epochs: list[int | None], n: int | None = None) -> str:
    n = group["n_seeds"] if n is None else n
    return f"{group['label']}: {n} seed{'s' if n != 1 else ''}, {_epochs_text(epochs)}"


def panel_title(dataset: str, counts: list[int], epochs: list[int | None]) -> str:
    """'SVHN (4 seeds, epoch 50)': the budget on the panel itself, so a PNG shared alone still carries it."""
    n = sorted(set(counts)) or [0]
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    return f"{dataset_label(dataset)} ({seeds} seed{'s' if n[-1] != 1 else ''}, {_epochs_text(epochs)})"


def _trained_epochs(groups: list[dict[str, Any]], stats: list[dict[str, Any]]) -> list[int | None]:
    """Epochs behind the trained bars; the untrained baseline's epoch 0 is named by its label."""
    epochs = [e for g, s in zip(groups, stats) if g["condition"] != UNTRAINED for e in s["epochs"]]
    return epochs or [e for s in stats for e in s["epochs"]]


def _integer_epochs(ax) -> None:
    """Epochs are whole numbers; without this a one-epoch study gets ticks at 0.95, 0.975, ..."""
    from matplotlib.ticker import MaxNLocator

    low, high = ax.get_xlim()
    if high - low < 2:  # too narrow for integer ticks: centre the single epoch in a 2-epoch window
        middle = round((low + high) / 2)
        ax.set_xlim(middle - 1, middle + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _caption(parts: list[str]) -> str:
    return "; ".join(parts)


def _datasets(summary: dict[str, Any], need: Callable[[dict[str, Any]], bool], missing: str) -> list[str]:
    """Datasets with at least one group that has what the figure needs; MissingData(missing) if none."""
    datasets = [d for d, groups in summary["datasets"].items() if any(need(g) for g in groups.values())]
    if not datasets:
        raise MissingData(missing)
    return datasets


def _axes_row(plt, count: int, width: float = 4.6, height: float = 3.4):
    figure, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    return figure, list(axes[0])


def _band(ax, x, mean, sem, condition: str, label: str, scale: float = 1.0) -> None:
    y = [m * scale for m in mean]
    ax.plot(x, y, color=color(condition), label=label, marker="o" if len(x) < 12 else None, markersize=3)
    if any(s is not None for s in sem):
        low = [(m - (s or 0.0)) * scale for m, s in zip(mean, sem)]
        high = [(m + (s or 0.0)) * scale for m, s in zip(mean, sem)]
        ax.fill_between(x, low, high, color=color(condition), alpha=0.2, linewidth=0)


# ---------------------------------------------------------------------------------------------
# Figures

def _readout_curves(summary: dict[str, Any], conditions: tuple[str, ...] | None, title: str):
    plt = pyplot()
    has_curve = lambda g: READOUT in g["curves"] and (conditions is None or g["condition"] in conditions)
    datasets = _datasets(summary, has_curve, "no per-epoch read-out accuracy (probe/test_acc in metrics.jsonl)")
    figure, axes = _axes_row(plt, len(datasets))
    captions = []
    for ax, dataset in zip(axes, datasets):
        groups = [g for g in summary["datasets"][dataset].values() if has_curve(g)]
        for group in groups:
            condition, curve = group["condition"], group["curves"][READOUT]
            _band(ax, curve["epochs"], curve["mean"], curve["sem"], condition, group["label"], 100)
            if condition in TABLE1.get(dataset, {}):
                ax.axhline(TABLE1[dataset][condition][0], color=color(condition), linestyle="--", linewidth=0.8)
            captions.append(f"{dataset_label(dataset)} {budget_text(group, group['final_epochs'])}")
        ax.plot([], [], color="grey", linestyle="--", linewidth=0.8, label=f"paper, epoch {EPOCHS}")
        budget = panel_title(dataset, [g["n_seeds"] for g in groups], [e for g in groups for e in g["final_epochs"]])
        ax.set(title=budget, xlabel="epoch", ylabel="read-out test accuracy (%)")
        _integer_epochs(ax)
        ax.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    caption = (f"{title}: mean ± SEM over seeds (band); dashed lines: the paper's value at epoch {EPOCHS} "
               f"(Appendix 1—table 1, {SEEDS} seeds). " + _caption(captions))
    return figure, caption


def fig4c_linear_separability(summary: dict[str, Any]):
    return _readout_curves(summary, ("pad", "no-rem", "no-memory-mix"),
                           "Linear separability (Fig. 4c,d): PAD, w/o REM, w/o memory mix")


def appendix_fig3_all_conditions(summary: dict[str, Any]):
    return _readout_curves(summary, None, "Linear separability, all conditions (Appendix 1—fig. 3)")


def fig5c_occlusion(summary: dict[str, Any]):
    plt = pyplot()
    wanted = ("pad", "no-nrem")
    has = lambda g: g["condition"] in wanted and g["occlusion"] and "test_acc" in g["occlusion"]
    datasets = _datasets(summary, has,
                         "no occlusion read-out (occlusion/probabilities, occlusion/test_acc) for PAD or w/o NREM")
    figure, axes = _axes_row(plt, len(datasets))
    captions = []
    for ax, dataset in zip(axes, datasets):
        groups = [g for c in wanted for g in [summary["datasets"][dataset].get(c)] if g is not None and has(g)]
        for group in groups:
            condition, occlusion = group["condition"], group["occlusion"]
            x = [100 * p for p in occlusion["probabilities"]]
            y = [100 * m for m in occlusion["test_acc"]["mean"]]
            error = [None if s is None else 100 * s for s in occlusion["test_acc"]["sem"]]
            ax.errorbar(x, y, yerr=None if None in error else error, color=color(condition), marker="o",
                        markersize=3, capsize=2, label=group["label"])
            size = group["eval"].get("occlusion/size")
            used = budget_text(group, occlusion["epochs"], len(occlusion["seeds"]))
            captions.append(f"{dataset_label(dataset)} {used}"
                            + (f", square size {size['mean']:g}" if size else ""))
        ax.set(title=panel_title(dataset, [len(g["occlusion"]["seeds"]) for g in groups],
                                 [e for g in groups for e in g["occlusion"]["epochs"]]),
               xlabel="occlusion probability (%)", ylabel="read-out test accuracy (%)")
        ax.legend(fontsize=7)
    title = "Read-out accuracy under occlusion (Fig. 5c,d)"
    figure.suptitle(title, fontsize=10)
    return figure, f"{title}: mean ± SEM over seeds. " + _caption(captions)


def fig6bcd_pca(summary: dict[str, Any]):
    plt = pyplot()
    wanted = ("pad", "no-rem", "no-nrem")
    has = lambda g: g["condition"] in wanted and g["pca"] and "points" in g["pca"]
    datasets = _datasets(summary, has, "no PCA data for PAD, w/o REM or w/o NREM")
    figure, grid = plt.subplots(len(datasets), len(wanted), figsize=(3.6 * len(wanted), 3.4 * len(datasets)),
                                squeeze=False)
    captions = []
    for row, dataset in zip(grid, datasets):
        for ax, condition in zip(row, wanted):
            group = summary["datasets"][dataset].get(condition)
            if group is None or not has(group):
                ax.set_axis_off()
                ax.set_title(f"{dataset_label(dataset)}: no PCA data for {condition}", fontsize=8)
                continue
            pca = group["pca"]
            classes = sorted(set(pca["labels"]))[:len(CLASS_COLORS)]
            for class_color, label in zip(CLASS_COLORS, classes):
                for occluded in (False, True):
                    xy = [p for p, l, o in zip(pca["points"], pca["labels"], pca["occluded"])
                          if l == label and o == occluded]
                    if not xy:
                        continue
                    ax.scatter([p[0] for p in xy], [p[1] for p in xy], s=9, linewidths=0.7,
                               facecolors="none" if occluded else class_color, edgecolors=class_color,
                               label=f"class {label}" if not occluded else None)
            variance = pca.get("explained_variance")
            note = "" if not variance else " (EV " + ", ".join(f"{100 * v:.0f}%" for v in variance[:2]) + ")"
            ax.set_title(f"{dataset_label(dataset)} {group['label']}: seed {pca['seed']}, epoch {pca['epoch']}{note}",
                         fontsize=8)
            ax.set(xlabel="PC 1", ylabel="PC 2")
            ax.legend(fontsize=6, loc="best")
            captions.append(f"{dataset_label(dataset)} {group['label']} seed {pca['seed']}, epoch {pca['epoch']}")
    title = "Latent space, first two principal components (Fig. 6b-d)"
    figure.suptitle(title, fontsize=10)
    return figure, (f"{title}: full circles clean images, open circles occluded images; the four lowest "
                    f"classes; one seed per condition. " + _caption(captions))


def _bars(summary: dict[str, Any], key: str, title: str, conditions: tuple[str, ...], ylabel: str):
    plt = pyplot()
    has = lambda g: g["condition"] in conditions and key in g["eval"]
    datasets = _datasets(summary, has, f"no {key} in any evaluation")
    figure, axes = _axes_row(plt, len(datasets), width=4.0)
    captions = []
    for ax, dataset in zip(axes, datasets):
        groups = [g for c, g in summary["datasets"][dataset].items() if has(g)]
        stats = [g["eval"][key] for g in groups]
        error = [s["sem"] for s in stats]
        ax.bar(range(len(groups)), [s["mean"] for s in stats], color=[color(g["condition"]) for g in groups],
               yerr=None if None in error else error, capsize=3)
        ax.set_xticks(range(len(groups)), [g["label"] for g in groups], rotation=30, ha="right", fontsize=8)
        ax.set(title=panel_title(dataset, [s["n"] for s in stats], _trained_epochs(groups, stats)),
               ylabel=ylabel)
        captions += [f"{dataset_label(dataset)} {budget_text(g, s['epochs'], s['n'])}" for g, s in zip(groups, stats)]
    figure.suptitle(title, fontsize=10)
    return figure, f"{title}: mean ± SEM over seeds (no bar when a condition has one seed). " + _caption(captions)


ALL_BARS = (UNTRAINED, "pad", "no-rem", "no-nrem", "no-memory-mix", "wake-only")


def fig6e_intra_inter(summary: dict[str, Any]):
    return _bars(summary, "distance/intra_inter_ratio", "Intra-class / inter-class distance (Fig. 6e)",
                 ALL_BARS, "intra / inter")


def fig6f_clean_occluded(summary: dict[str, Any]):
    return _bars(summary, "distance/clean_occluded_inter_ratio",
                 "Clean-occluded / inter-class distance (Fig. 6f)", ALL_BARS, "clean-occluded / inter")


def fig3d_fid(summary: dict[str, Any]):
    plt = pyplot()
    kinds = ("fid/nrem", "fid/rem")
    has = lambda g: any(k in g["eval"] for k in kinds)
    datasets = _datasets(summary, has, "no FID (fid/nrem, fid/rem) in any evaluation")
    figure, axes = _axes_row(plt, len(datasets), width=4.4)
    captions = []
    for ax, dataset in zip(axes, datasets):
        groups = [g for g in summary["datasets"][dataset].values() if has(g)]
        width = 0.38
        for offset, kind, hatch in ((-width / 2, "fid/nrem", ""), (width / 2, "fid/rem", "//")):
            stats = [g["eval"].get(kind) for g in groups]
            x = [i + offset for i, s in enumerate(stats) if s]
            error = [s["sem"] for s in stats if s]
            ax.bar(x, [s["mean"] for s in stats if s], width, yerr=None if None in error else error, capsize=3,
                   color=[color(g["condition"]) for g, s in zip(groups, stats) if s], hatch=hatch,
                   edgecolor="white", label=kind.split("/")[1].upper())
        ax.set_xticks(range(len(groups)), [g["label"] for g in groups], rotation=30, ha="right", fontsize=8)
        shown = [g["eval"].get("fid/nrem") or g["eval"].get("fid/rem") for g in groups]
        ax.set(title=panel_title(dataset, [s["n"] for s in shown], _trained_epochs(groups, shown)),
               ylabel="FID (lower: more realistic)")
        ax.legend(fontsize=7)
        for g in groups:
            stat = g["eval"].get("fid/nrem") or g["eval"].get("fid/rem")
            samples = g["eval"].get("fid/samples")
            captions.append(f"{dataset_label(dataset)} {budget_text(g, stat['epochs'], stat['n'])}"
                            + (f", {samples['mean']:.0f} samples" if samples else ""))
    title = "FID of NREM and REM dreams (Fig. 3d)"
    figure.suptitle(title, fontsize=10)
    return figure, (f"{title}: plain bars NREM, hatched bars REM; untrained = epoch 0; mean ± SEM over seeds. "
                    + _caption(captions))


def appendix_fig1_losses(summary: dict[str, Any], dataset: str):
    plt = pyplot()
    groups = [g for g in summary["datasets"][dataset].values() if any(k.startswith("loss/") for k in g["curves"])]
    keys = sorted({k for g in groups for k in g["curves"] if k.startswith("loss/")})
    if not keys:
        raise MissingData(f"no per-epoch losses for {dataset}")
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    axes = [ax for row in grid for ax in row]
    for ax, key in zip(axes, keys):
        for group in groups:
            curve = group["curves"].get(key)
            if curve:
                _band(ax, curve["epochs"], curve["mean"], curve["sem"], group["condition"], group["label"])
        ax.set(title=key, xlabel="epoch")
        _integer_epochs(ax)
        ax.legend(fontsize=6)
    for ax in axes[len(keys):]:
        ax.set_axis_off()
    budget = panel_title(dataset, [g["n_seeds"] for g in groups], [e for g in groups for e in g["final_epochs"]])
    title = f"Training losses per epoch (Appendix 1—fig. {1 if dataset == 'cifar10' else 2}), {budget}"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure, (f"{title}: epoch means, mean ± SEM over seeds. "
                    + _caption([budget_text(g, g["final_epochs"]) for g in groups]))


def figure_makers(summary: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    """(file stem, function) for every figure this summary could have, in the report's order."""
    makers = [("fig3d_fid", lambda: fig3d_fid(summary)),
              ("fig4c_linear_separability", lambda: fig4c_linear_separability(summary)),
              ("fig5c_occlusion", lambda: fig5c_occlusion(summary)),
              ("fig6bcd_pca", lambda: fig6bcd_pca(summary)),
              ("fig6e_intra_inter", lambda: fig6e_intra_inter(summary)),
              ("fig6f_clean_occluded", lambda: fig6f_clean_occluded(summary))]
    makers += [(f"appendix_fig1_losses_{d}", lambda d=d: appendix_fig1_losses(summary, d))
               for d in summary["datasets"]]
    makers.append(("appendix_fig3_all_conditions", lambda: appendix_fig3_all_conditions(summary)))
    return makers


def make_figures(summary: dict[str, Any], out_dir: str | Path) -> list[dict[str, Any]]:
    """Draw every figure the summary has data for into OUT_DIR/NAME.png.

    Returns one entry per figure: {name, file (relative, or None), caption, skipped (reason or None)}."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name, make in figure_makers(summary):
        try:
            figure, caption = make()
        except MissingData as missing:
            results.append({"name": name, "file": None, "caption": None, "skipped": str(missing)})
            continue
        try:
            figure.savefig(out_dir / f"{name}.png", dpi=DPI, bbox_inches="tight")
        finally:
            plt.close(figure)
        results.append({"name": name, "file": f"{name}.png", "caption": caption, "skipped": None})
    return results
