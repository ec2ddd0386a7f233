"""report.md and a self-contained report.html from the summary, the claim checks and the drawn figures.

The report is built once as a list of blocks (heading, paragraph, table, list, figure) and written out
twice, so the Markdown and HTML versions cannot disagree. The HTML embeds its figures as base64 PNG:
one file to share. Every number of ours stands next to the paper's and names the seeds and epochs
behind it.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from padream.experiments.grid import UNTRAINED
from padream.report import paper
from padream.report.aggregate import SEM_DEFINITION, condition_label, final_readout

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
NA = "—"

# ("h", level, text) | ("p", text) | ("list", items) | ("table", headers, rows) | ("figure", file, caption)
Block = tuple


# ---------------------------------------------------------------------------------------------
# Number formatting

def _epochs(stat: dict[str, Any]) -> str:
    known = sorted({e for e in stat.get("epochs", []) if e is not None})
    if not known:
        return "epoch unknown"
    return f"{known[0]} epoch{'s' if known[0] != 1 else ''}" if len(known) == 1 else f"{known[0]}-{known[-1]} epochs"


def with_budget(stat: dict[str, Any] | None, scale: float = 100.0, digits: int = 2) -> str:
    """'58.25 ± 0.70 (4 seeds, 50 epochs)'; SEM 'n/a' for one seed."""
    if stat is None:
        return NA
    sem = "n/a" if stat.get("sem") is None else f"{stat['sem'] * scale:.{digits}f}"
    n = stat["n"]
    return f"{stat['mean'] * scale:.{digits}f} ± {sem} ({n} seed{'s' if n != 1 else ''}, {_epochs(stat)})"


def _paper_cell(dataset: str, condition: str) -> str:
    value = paper.TABLE1.get(dataset, {}).get(condition)
    return NA if value is None else f"{value[0]:.2f} ± {value[1]:.2f}"


def _difference(stat: dict[str, Any] | None, dataset: str, condition: str) -> str:
    value = paper.TABLE1.get(dataset, {}).get(condition)
    if stat is None or value is None:
        return NA
    return f"{100 * stat['mean'] - value[0]:+.2f}"


def _dataset_label(dataset: str) -> str:
    return paper.DATASET_LABELS.get(dataset, dataset)


# ---------------------------------------------------------------------------------------------
# Sections

def _study_section(summary: dict[str, Any]) -> list[Block]:
    rows = []
    for dataset, groups in summary["datasets"].items():
        for condition, group in groups.items():
            reached = ", ".join(str(e) for e in group["final_epochs"])
            planned = ", ".join(str(e) for e in group["epochs_planned"]) or NA
            done = sum(1 for r in summary["runs"] if r["dataset"] == dataset and r["condition"] == condition
                       and r["done"])
            config = group["config"]
            network = (f"{config['latent_dim']} / {config['base_channels']}"
                       if "latent_dim" in config and "base_channels" in config else NA)
            rows.append([_dataset_label(dataset), group["label"], ", ".join(map(str, group["seeds"])),
                         reached if condition != UNTRAINED else "0 (untrained)", planned,
                         ", ".join(map(str, group["train_images"])) or NA, network,
                         f"{done} of {group['n_seeds']}"])
    blocks: list[Block] = [
        ("h", 2, "Study"),
        ("p", f"Runs read from {summary['runs_dir']} ({len(summary['runs'])} run folders), summary created "
              f"{summary['created']}. Paper: {paper.CITATION}; its numbers are means ± SEM over "
              f"{paper.SEEDS} seeds at epoch {paper.EPOCHS} with a latent dimension of 256 and 64 base "
              f"channels, trained on the full training sets."),
        ("p", f"Statistics: mean ± SEM over seeds, SEM = {SEM_DEFINITION} (shown as 'n/a'). Each of our "
              f"numbers names its seeds and epochs. Accuracies are in percent of the whole test set."),
        ("table", ["Dataset", "Condition", "Seeds", "Epochs reached", "Epochs planned", "Training images",
                   "Latent dim / base channels", "done.json"], rows),
    ]
    flags = [f"{_dataset_label(d)} {g['label']}: {flag}" for d, groups in summary["datasets"].items()
             for g in groups.values() for flag in g["flags"]]
    if flags:
        blocks += [("p", "Flags (read these before the numbers):"), ("list", flags)]
    return blocks


def _table1_section(dataset: str, groups: dict[str, Any]) -> list[Block]:
    label = _dataset_label(dataset)
    rows, sources = [], set()
    conditions = [c for c in groups] + [c for c in paper.TABLE1.get(dataset, {}) if c not in groups]
    for condition in conditions:
        group = groups.get(condition)
        stat, source = final_readout(group) if group else (None, None)
        sources.add(source)
        name = group["label"] if group else condition_label(condition)
        rows.append([name, with_budget(stat), _paper_cell(dataset, condition), _difference(stat, dataset, condition)])
    note = ("Ours: the linear read-out trained as in the paper (SGD, lr 0.2, batch 64) on the latents of the "
            "last complete epoch, from metrics.jsonl")
    if "eval" in sources:
        note += "; where a condition has no per-epoch read-out (the untrained encoder), the evaluation suite's"
    note += ". Difference: ours minus paper, in percentage points. A condition the study did not run shows '—'."
    return [("h", 2, f"{label}: linear separability (Appendix 1—table 1)"),
            ("table", ["Condition", "Ours: mean ± SEM (seeds, epochs)",
                       f"Paper ({paper.SEEDS} seeds, {paper.EPOCHS} epochs)", "Difference"], rows),
            ("p", note)]


def _readout_variants_section(dataset: str, groups: dict[str, Any]) -> list[Block]:
    rows = []
    for condition, group in groups.items():
        sgd, _ = final_readout(group)
        last5 = group["final"].get("probe/test_acc_last5") or group["eval"].get("probe/test_acc_last5")
        converged = group["eval"].get("converged/test_acc")
        rows.append([group["label"], with_budget(sgd), with_budget(last5), with_budget(converged),
                     _paper_cell(dataset, condition)])
    if not rows:
        return []
    return [("h", 3, f"{_dataset_label(dataset)}: read-out variants"),
            ("table", ["Condition", "SGD read-out (final weights)", "Mean of the last 5 read-out epochs",
                       "Converged read-out", "Paper (SGD read-out)"], rows),
            ("p", "The SGD read-out is the paper's protocol. The mean over its last five epochs shows how much "
                  "the final-epoch number moves with where SGD happens to stop. The converged read-out is "
                  "multinomial logistic regression fitted to convergence on the same latents (L2 strength chosen "
                  "on held-out training data): one answer per representation, free of SGD's epoch-to-epoch noise.")]


MEASUREMENTS = (
    ("occlusion", "Occlusion read-out, mean over 0 < p < 1 (%)", 100.0, 2),
    ("distance/intra_inter_ratio", "Intra/inter distance", 1.0, 3),
    ("distance/clean_occluded_inter_ratio", "Clean-occluded/inter distance", 1.0, 3),
    ("fid/nrem", "FID NREM", 1.0, 1),
    ("fid/rem", "FID REM", 1.0, 1),
)


def _measurement(group: dict[str, Any], key: str) -> dict[str, Any] | None:
    if key == "occlusion":
        return (group["occlusion"] or {}).get("partial_mean_test_acc")
    return group["eval"].get(key)


def _measurements_section(dataset: str, groups: dict[str, Any]) -> list[Block]:
    present = [m for m in MEASUREMENTS if any(_measurement(g, m[0]) for g in groups.values())]
    if not present:
        return [("h", 3, f"{_dataset_label(dataset)}: occlusion, latent distances, FID"),
                ("p", "Not measured: no run of this dataset has occlusion, distance or FID results.")]
    rows = [[g["label"], *(with_budget(_measurement(g, key), scale, digits) for key, _, scale, digits in present)]
            for g in groups.values()]
    blocks: list[Block] = [("h", 3, f"{_dataset_label(dataset)}: occlusion, latent distances, FID"),
                           ("table", ["Condition", *(title for _, title, _, _ in present)], rows)]
    occlusion = [g for g in groups.values() if g["occlusion"] and "test_acc" in g["occlusion"]]
    if occlusion:
        probabilities = occlusion[0]["occlusion"]["probabilities"]
        rows = []
        for group in occlusion:
            curve = group["occlusion"]
            if curve["probabilities"] != probabilities:
                continue
            rows.append([group["label"], *(f"{100 * m:.1f}" for m in curve["test_acc"]["mean"])])
        blocks += [("p", "Read-out accuracy (%) by occlusion probability, mean over seeds:"),
                   ("table", ["Condition", *(f"p = {p:g}" for p in probabilities)], rows)]
    return blocks


def _claims_section(claims: list[dict[str, str]]) -> list[Block]:
    rows = [[f"{c['claim']} ({c['source']})", _dataset_label(c["dataset"]), c["verdict"], c["evidence"]]
            for c in claims]
    return [("h", 2, "The paper's qualitative claims"),
            ("p", "'shows at this budget': the ordering the paper reports holds for our means and every difference "
                  "it rests on exceeds the combined SEM of the two means (about one standard error; not a "
                  "significance test). 'does not show': our numbers do not meet that bar with the seeds and "
                  "epochs we have; at a smaller budget than the paper's this is not evidence against it. "
                  "'not measured': the study lacks a number the check needs; the evidence then says whether "
                  "the conditions it did measure already order as the paper says."),
            ("table", ["Claim", "Dataset", "Verdict", "Evidence"], rows)]


def _figures_section(figures: list[dict[str, Any]]) -> list[Block]:
    blocks: list[Block] = [("h", 2, "Figures")]
    for entry in figures:
        if entry["file"]:
            blocks.append(("figure", entry["file"], entry["caption"]))
    skipped = [f"{entry['name']}: {entry['skipped']}" for entry in figures if entry["skipped"]]
    if skipped:
        blocks += [("p", "Figures not drawn, for lack of data:"), ("list", skipped)]
    return blocks


def build_blocks(summary: dict[str, Any], claims: list[dict[str, str]], figures: list[dict[str, Any]]) -> list[Block]:
    blocks: list[Block] = [("h", 1, "Perturbed and adversarial dreaming: our runs against the paper")]
    blocks += _study_section(summary)
    for dataset, groups in summary["datasets"].items():
        blocks += _table1_section(dataset, groups)
        blocks += _readout_variants_section(dataset, groups)
        blocks += _measurements_section(dataset, groups)
    blocks += _claims_section(claims)
    blocks += _figures_section(figures)
    return blocks


# ---------------------------------------------------------------------------------------------
# Writers

def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            lines += ["#" * block[1] + " " + block[2], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "figure":
            lines += [f"![{Path(block[1]).stem}]({block[1]})", "", f"*{_md_cell(block[2])}*", ""]
    return "\n".join(lines)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; }
figcaption { font-size: 0.85rem; color: #444; }
"""


def to_html(blocks: list[Block], figure_dir: Path) -> str:
    """A standalone page: text escaped, figures embedded as base64 PNG."""
    escape = html.escape
    title = next((b[2] for b in blocks if b[0] == "h"), "report")
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind == "h":
            parts.append(f"<h{block[1]}>{escape(block[2])}</h{block[1]}>")
        elif kind == "p":
            parts.append(f"<p>{escape(block[1])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{escape(str(item))}</li>" for item in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{escape(str(h))}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in block[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            data = base64.b64encode((figure_dir / block[1]).read_bytes()).decode("ascii")
            parts.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{escape(block[1])}\">"
                         f"<figcaption>{escape(block[2])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_report(summary: dict[str, Any], claims: list[dict[str, str]], figures: list[dict[str, Any]],
                  out_dir: str | Path) -> dict[str, Path]:
    """Write OUT_DIR/report.md and OUT_DIR/report.html (figures already drawn into OUT_DIR)."""
    out_dir = Path(out_dir)
    blocks = build_blocks(summary, claims, figures)
    markdown, page = out_dir / REPORT_MD, out_dir / REPORT_HTML
    markdown.write_text(to_markdown(blocks))
    page.write_text(to_html(blocks, out_dir))
    return {"markdown": markdown, "html": page}
