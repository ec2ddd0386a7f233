import pytest

from padream.report import build_report
from padream.report.render import to_html, to_markdown, with_budget

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG_SIGNATURE and len(data) > 2000


@pytest.fixture
def full_study(tmp_path, write_run, row):
    """Two seeds of the paper's conditions with every evaluation the figures use."""
    runs = tmp_path / "runs"
    pca = {"pca/points": [[i % 5, i // 5] for i in range(40)], "pca/labels": [i % 4 for i in range(40)],
           "pca/occluded": [i >= 20 for i in range(40)], "pca/explained_variance": [0.3, 0.1]}
    for offset, condition in enumerate(("pad", "no-rem", "no-memory-mix", "no-nrem", "wake-only")):
        for seed in (0, 1):
            rows = [row(e, 0.1 * e + 0.01 * seed, **{"loss/nrem_latent": 0.3 / e, "d/real_mean": 0.6})
                    for e in (1, 2, 3)]
            evals = {"distance": {"distance/intra_inter_ratio": 0.5 + 0.1 * offset + 0.01 * seed,
                                  "distance/clean_occluded_inter_ratio": 0.2 + 0.05 * offset},
                     "occlusion": {"occlusion/probabilities": [0.0, 0.5, 1.0],
                                   "occlusion/test_acc": [0.5, 0.3 - 0.01 * offset, 0.1], "occlusion/size": 4},
                     "fid": {"fid/nrem": 100.0 - seed, "fid/rem": 120.0 + seed, "fid/samples": 500},
                     "pca": pca}
            write_run(runs, "svhn", condition, seed, rows, evals)
    for seed in (0, 1):
        write_run(runs, "svhn", "untrained", seed, evals={"e": {"probe/test_acc": 0.19, "fid/nrem": 400.0,
                                                                "distance/intra_inter_ratio": 0.97}})
    return runs


def test_html_escapes_text_and_markdown_escapes_table_cells(tmp_path):
    blocks = [("h", 1, "A <title> & more"), ("p", "x < y & \"z\""), ("list", ["<li>"]),
              ("table", ["a|b", "<th>"], [["1|2", "<script>alert(1)</script>"]])]
    page = to_html(blocks, tmp_path)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>A &lt;title&gt; &amp; more</title>" in page and "x &lt; y &amp; &quot;z&quot;" in page
    markdown = to_markdown(blocks)
    assert "| a\\|b | <th> |" in markdown and "| 1\\|2 |" in markdown


def test_numbers_carry_their_seeds_and_epochs():
    paper_like = {"mean": 0.5825, "sem": 0.007, "n": 4, "epochs": [50] * 4}
    assert with_budget(paper_like) == "58.25 ± 0.70 (4 seeds, 50 epochs)"
    assert with_budget({"mean": 0.5, "sem": None, "n": 1, "epochs": [3]}) == "50.00 ± n/a (1 seed, 3 epochs)"
    assert with_budget({"mean": 0.5, "sem": 0.0, "n": 2, "epochs": [2, 3]}) == "50.00 ± 0.00 (2 seeds, 2-3 epochs)"
    assert with_budget(None) == "—"


def test_every_figure_is_drawn_when_the_data_is_there(full_study, tmp_path):
    out = tmp_path / "report"
    result = build_report(full_study, out)
    assert [f["name"] for f in result["figures"] if f["skipped"]] == []
    for name in ("fig3d_fid", "fig4c_linear_separability", "fig5c_occlusion", "fig6bcd_pca", "fig6e_intra_inter",
                 "fig6f_clean_occluded", "appendix_fig1_losses_svhn", "appendix_fig3_all_conditions"):
        assert is_png(out / f"{name}.png"), name
    for figure in result["figures"]:
        assert "seed" in figure["caption"] and "epoch 3" in figure["caption"]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 8 and 'src="fig' not in page
    markdown = (out / "report.md").read_text()
    assert "78.92 ± 0.40" in markdown  # the paper's SVHN PAD value beside ours
    assert "(fig6bcd_pca.png)" in markdown


def test_missing_data_skips_a_figure_and_says_so(tmp_path, write_run, row):
    runs = tmp_path / "runs"
    write_run(runs, "cifar10", "pad", 0, [row(1, 0.3), row(2, 0.4)])
    result = build_report(runs, tmp_path / "report")
    skipped = {f["name"]: f["skipped"] for f in result["figures"] if f["skipped"]}
    assert "fig3d_fid" in skipped and "fig6bcd_pca" in skipped and "fig4c_linear_separability" not in skipped
    assert not (tmp_path / "report" / "fig3d_fid.png").exists()
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "fig3d_fid: no FID" in markdown
    assert "40.00 ± n/a (1 seed, 2 epochs)" in markdown


def test_without_matplotlib_the_summary_is_written_and_the_error_says_what_to_install(
        tmp_path, write_run, row, monkeypatch):
    import sys

    from padream.report import ReportError

    write_run(tmp_path / "runs", "cifar10", "pad", 0, [row(1, 0.3)])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(ReportError, match=r"pip install 'padream\[report\]'"):
        build_report(tmp_path / "runs", tmp_path / "report")
    assert (tmp_path / "report" / "summary.json").exists() and (tmp_path / "report" / "runs.csv").exists()
