"""Aggregate a study's runs, redraw the paper's figures and compare with its numbers: `padream report`.

The order is fixed: runs -> summary.json (aggregate) -> figures and report (read the summary only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from padream.report.aggregate import ReportError


def build_report(runs_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Write summary.json, runs.csv, the figures, report.md and report.html into OUT_DIR.

    The summary and the CSV are written before any figure, so they exist even when matplotlib is missing."""
    from padream.report.aggregate import aggregate, collect_runs, read_summary, write_runs_csv, write_summary
    from padream.report.claims import check_claims
    from padream.report.figures import make_figures
    from padream.report.render import render_report

    runs = collect_runs(runs_dir)
    if not runs:
        raise ReportError(f"no run folders under {runs_dir} (expected DATASET/CONDITION/seedK folders with "
                          f"config.json, metrics.jsonl or eval/)")
    out_dir = Path(out_dir)
    summary_path = write_summary(aggregate(runs, runs_dir), out_dir)
    csv_path = write_runs_csv(runs, out_dir)
    summary = read_summary(summary_path)  # figures and text see exactly what was written
    claims = check_claims(summary)
    figures = make_figures(summary, out_dir)
    pages = render_report(summary, claims, figures, out_dir)
    return {"summary": summary_path, "runs_csv": csv_path, **pages, "figures": figures, "claims": claims,
            "runs": len(runs)}


__all__ = ["ReportError", "build_report"]
