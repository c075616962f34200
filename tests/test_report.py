"""The report a reviewer reads: its pages and captions render, and `snakemake --report` of a real grid holds
every table's rows as HTML, the plots, curves, CD diagram and resolved config; no PDF has a Type 3 font."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jinja2
import pandas as pd
import pytest
import yaml
from conftest import REPO, snakemake, write_config
from docutils.core import publish_parts
from fixtures.pdf_fonts import assert_no_type3

from benchmark.config import validate
from benchmark.grid import table_config
from benchmark.report import config_page
from benchmark.tables import html_page, summarise, to_html

REPORT = REPO / "workflow" / "report"


def config() -> dict:
    return validate({
        "grid": "rep", "datasets": ["digits"], "methods": ["softmax_ce", "cosine"], "samples_per_class": [5, "all"],
        "seeds": [0, 1], "tracking": False, "baseline": "softmax_ce",
        "train": {"epochs": 3, "lr": {"softmax_ce": 0.05, "cosine": 0.5}},
        "dataset_settings": {"digits": {"model": "small_cnn", "train": {"lr": {"default": 0.1, "cosine": 0.7}}}},
    })


def table_fragment() -> str:
    rows = [{"dataset": "digits", "method": m, "spc": "5", "split": 0, "seed": s, "status": "ok",
             "accuracy": a, "per_class": 5.0} for m, acc in (("softmax_ce", (70.0, 72.0)), ("cosine", (75.0, 79.0)))
            for s, a in enumerate(acc)]
    return to_html(summarise(pd.DataFrame(rows), ["softmax_ce", "cosine"], [("digits", "5")]))


def test_html_page_is_standalone_utf8_and_keeps_the_rows():
    fragment = table_fragment()
    page = html_page(fragment, "grid <rep>")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "<title>grid &lt;rep&gt;</title>" in page and fragment.strip() in page
    # the style is scoped: the page is also embedded in the report's own page
    style = page[page.index("<style>"):page.index("</style>")]
    assert all(rule.strip().startswith(".results-table") for rule in re.findall(r"}\s*([^{}]+){", "}" + style[7:]))
    assert "<td><strong>77.0 ± 2.8</strong> [51.6, 102.4] n=2</td>" in page


def test_config_page_resolves_every_cell_setting():
    page = config_page(table_config(config()))
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows[1:]]
    assert [c[:3] + c[4:9] for c in cells] == [
        ["digits", "softmax_ce", "5", "small_cnn", "stored", "3", "64", "0.1"],  # the dataset's default
        ["digits", "softmax_ce", "all", "small_cnn", "stored", "3", "64", "0.1"],  # one row per size: a
        ["digits", "cosine", "5", "small_cnn", "stored", "3", "64", "0.7"],  # tuned grid's values differ
        ["digits", "cosine", "all", "small_cnn", "stored", "3", "64", "0.7"],
    ]
    assert all(re.fullmatch(r"[0-9a-f]{10}", c[3]) for c in cells)
    assert "<h2>Grid rep: 8 cells in 8 jobs</h2>" in page
    dumped = yaml.safe_load(page[page.index("<pre>") + 5:page.index("</pre>")].replace("&#x27;", "'"))
    assert dumped["dataset_settings"]["digits"]["train"]["lr"] == {"default": 0.1, "cosine": 0.7}
    assert "threads" not in dumped and dumped["train"]["schedule"]["name"] == "cosine"


@dataclass(frozen=True)
class Category:
    name: str


@dataclass(frozen=True)
class File:
    target: str
    path: str


def render_rst(name: str, config: dict, categories=(), files=()) -> str:
    """What Snakemake does with a caption or the description: Jinja, then docutils to HTML."""
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    links = "\n".join(f".. _{c}: javascript:app.showCategory('{quote(c)}')" for c in categories)
    links += "\n.. _Statistics: javascript:show_panel('statistics')\n"
    text = env.from_string((REPORT / name).read_text() + "\n\n" + links).render(
        snakemake=type("S", (), {"config": config}), categories={Category(c): {} for c in categories}, files=files)
    # report level 2, as Snakemake: warnings and errors show in the page as system messages
    return publish_parts(text, writer="html", settings_overrides={"report_level": 2})["html_body"]


@pytest.mark.parametrize("name", ["table.rst", "plot.rst", "curves.rst", "cd.rst", "config.rst"])
def test_captions_render_without_a_docutils_message(name):
    out = render_rst(name, config())
    assert "system-message" not in out and "<p>" in out
    if name != "curves.rst":
        assert "<tt class=\"docutils literal\">rep</tt>" in out  # the grid, by name


def test_table_caption_names_the_aggregates_default_baseline():
    without = {k: v for k, v in config().items() if k != "baseline"}
    assert "worse\nthan softmax_ce (two-sided paired t-test" in render_rst("table.rst", without)
    assert "▲" not in render_rst("table.rst", {**without, "methods": ["mse", "cosine"]})


def test_description_embeds_the_table_and_links_what_exists(tmp_path):
    table = tmp_path / "rep.html"
    table.write_text(html_page(table_fragment(), "rep"))
    out = render_rst("workflow.rst", config(), ["Tables", "Plots", "Training curves", "Configuration"],
                     [File("rep.html", str(table))])
    assert "system-message" not in out
    assert "<th>softmax_ce</th>" in out and "<th>cosine</th>" in out and "paired t-test" in out
    assert "javascript:app.showCategory('Training%20curves')" in out
    bare = render_rst("workflow.rst", config())  # before the aggregate ran: no table, no links, no error
    assert "system-message" not in bare and "<table" not in bare and "showCategory" not in bare


def test_training_curves_have_whole_epoch_ticks():
    import matplotlib.pyplot as plt

    from benchmark.plots import training_curves_figure

    curves = pd.DataFrame([{"dataset": "d", "method": "m", "spc": "5", "split": 0, "seed": 0, "epoch": e,
                            "name": "train_loss", "value": 1.0 / e} for e in (1, 2, 3)])
    fig = training_curves_figure(curves, "d", "5", ["m"])
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    plt.close(fig)
    assert ticks and all(float(t).is_integer() for t in ticks)


def report_data(path: Path) -> tuple[str, dict]:
    text = path.read_text()
    desc = json.loads(re.search(r"var workflow_desc = (.*);\n", text).group(1))
    results = json.loads(re.search(r"var results = (\{.*\});\n", text).group(1))
    return desc, results


def decoded(entry: dict) -> str:
    return base64.b64decode(entry["data_uri"].split(",", 1)[1]).decode()


@pytest.mark.slow
def test_report_of_a_real_grid(repo: Path):
    methods = ["softmax_ce", "cosine"]
    write_config(repo, "tiny", epochs=2, grid="tiny", methods=methods, samples_per_class=[5, "all"], seeds=[0],
                 tracking=False)
    snakemake(repo, "--cores", "2", "--configfile", "config/tiny.yaml")
    snakemake(repo, "--cores", "1", "--configfile", "config/tiny.yaml", "--report", "report.html")
    desc, results = report_data(repo / "report.html")
    csv = pd.read_csv(repo / "results" / "tables" / "tiny.csv")
    table = results["results/tables/tiny.html"]
    assert table["mime_type"] == "text/html" and "Holm-corrected" in table["caption"]
    for page in (desc, decoded(table)):  # inline on the first page and as the table's own page
        for method in methods:
            row = re.search(rf"<tr><th>{method}</th>(.*?)</tr>", page).group(1)
            means = csv[csv.method == method]["mean"].round(1).tolist()
            assert [float(m) for m in re.findall(r"<td>(?:<strong>)?(\d+\.\d)[ <]", row)] == means
        assert "Friedman" in page and "Nemenyi critical difference" in page
    assert {"results/plots/tiny_digits.png", "results/plots/tiny_curves_digits_5.png",
            "results/plots/tiny_curves_digits_all.png", "results/tables/tiny_cd.png",
            "results/report/tiny_config.html"} <= set(results)
    assert "Demšar" in results["results/tables/tiny_cd.png"]["caption"]
    assert "settings key" in decoded(results["results/report/tiny_config.html"])
    assert all("config" not in json.dumps(r["job_properties"]["params"]).replace("config_sha256", "")
               for r in results.values())  # no config JSON shown as a job parameter
    pdfs = sorted((repo / "results").rglob("*.pdf"))
    assert len(pdfs) == 4
    for pdf in pdfs:
        assert_no_type3(pdf)


def test_every_rule_can_run_in_the_conda_environment():
    """Every rule names environment.yml and calls `python` from PATH (Snakemake's own interpreter comes first
    there, common.smk), never a fixed interpreter: with `--sdm conda` the activated environment's python runs
    the job, without it Snakemake's."""
    files = list((REPO / "workflow" / "rules").glob("*.smk"))
    rules = sum(len(re.findall(r"^rule \w+:", f.read_text(), re.M)) for f in files)
    conda = sum(len(re.findall(r'^    conda:\n        "../../environment.yml"', f.read_text(), re.M)) for f in files)
    assert rules >= 10 and conda == rules
    shells = [line.strip() for f in files for line in f.read_text().splitlines()
              if line.strip().startswith('"') and ("-m benchmark" in line or "-m dvc" in line)]
    assert len(shells) >= 10 and all(line.startswith(('"python -m', '" && python -m')) for line in shells), shells
