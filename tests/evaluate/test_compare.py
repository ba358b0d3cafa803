"""Experiment comparison from a recorded `dvc exp show --json` (DVC 3.67, three experiments of a toy project)."""

import json
from pathlib import Path

import pytest

from headflow.evaluate.compare import build_comparison, differs, parse_exp_show, select

SAMPLE = Path(__file__).parent / "data" / "exp_show.json"


def test_parse_recorded_exp_show():
    exps = parse_exp_show(SAMPLE.read_text())
    assert [e.name for e in exps] == ["workspace", "master", "seed2", "seed1"]
    by = {e.name: e for e in exps}
    assert by["seed1"].params["evaluate.seed"] == 1 and by["master"].params["evaluate.n_boot"] == 1000
    assert by["seed1"].metrics["reconstruction/lipsync:default/ssim"] == 0.78
    assert by["master"].metrics["reconstruction/ground_truth/psnr"] == "inf"
    assert by["seed2"].rev.startswith("081d96bc")


def test_select_by_name_or_revision_and_name_the_unknown():
    exps = parse_exp_show(json.loads(SAMPLE.read_text()))
    assert [e.name for e in select(exps, ["seed2", "0775"])] == ["seed2", "master"]
    with pytest.raises(KeyError, match="known: workspace, master, seed2, seed1"):
        select(exps, ["seed9"])
    with pytest.raises(ValueError, match="dvc exp show"):
        parse_exp_show({"rev": "x"})


def test_differences_are_highlighted_and_equal_values_are_not():
    assert differs([0.8, 0.8, 0.78, "inf", None]) == [False, False, True, True, True]
    assert differs(["inf", "inf"]) == [False, False]
    exps = select(parse_exp_show(SAMPLE.read_text()), ["master", "seed1", "seed2"])
    page = build_comparison(exps)
    # the generated system's SSIM changed (0.8 -> 0.78 -> 0.76): highlighted with its difference
    row = page.split('data-key="reconstruction/lipsync:default/ssim"')[1].split("</tr>")[0]
    assert row.count('class="diff"') == 2 and "-0.02" in row and "-0.04" in row
    gt = page.split('data-key="reconstruction/ground_truth/psnr"')[1].split("</tr>")[0]
    assert 'class="diff"' not in gt and gt.count("inf") == 3
    params = page.split('class="params"')[1].split("</table>")[0]
    assert "evaluate.seed" in params and "evaluate.n_boot" not in params      # only the params that differ
    assert "<script" not in page and "https://" not in page and "data:image/png;base64," in page


def test_cli_writes_the_comparison_page(tmp_path, capsys):
    from headflow.cli import main

    out = tmp_path / "compare.html"
    assert main(["report", "--exp", "master", "seed1", "--json", str(SAMPLE), "--out", str(out)]) == 0
    assert out.exists() and "seed1" in out.read_text() and out.as_uri() in capsys.readouterr().out
    assert main(["report", "--exp", "nope", "--json", str(SAMPLE), "--out", str(out)]) == 1


def test_the_report_names_the_same_run_baselines_of_a_protocol_without_reference_systems():
    import pandas as pd

    from headflow.evaluate.report import same_run_baselines_note

    agg = pd.DataFrame({"protocol": ["reenactment", "reenactment", "reenactment", "transfer", "reconstruction"],
                        "family": ["head2headfs", "head2headfs", "head2headfs", "stylemap", "discohead"],
                        "variant": ["default", "default+retrieval", "default+random_init", "default",
                                    "default+source_warp"]})
    note = same_run_baselines_note(agg, "reenactment")
    assert "head2headfs:default+random_init, head2headfs:default+retrieval" in note
    assert "source_warp" not in note                       # another protocol's baseline is not listed
    assert "No family wrote" in same_run_baselines_note(agg, "transfer")
