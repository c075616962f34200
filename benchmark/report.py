"""The grid's page in the Snakemake report: what was run, with every setting resolved (`python -m benchmark
report-config`, run by the report_config rule; workflow/report/ holds the report's captions).

The config files a grid was launched with leave most settings to the schema's defaults and resolve the
learning rate per method; a reviewer needs what the cells were actually trained with. The page holds:
the grid's size (cells, jobs), one row per (dataset, method) with its settings key, model, input,
epochs, batch size, learning rate, schedule and precision as the cells resolved them, and the whole
validated config (every default filled in) as YAML.
"""

from __future__ import annotations

import copy
import html

import yaml

from benchmark.config import validate
from benchmark.grid import Grid
from benchmark.tables import html_page


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"


def _value(value) -> str:
    """A setting as the page shows it: numbers compactly; "tuned" where the tuned protocol selects it."""
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def settings_rows(grid: Grid) -> list[list[str]]:
    """One row per (dataset, method, samples per class): what its cells were trained with."""
    rows = []
    for c in grid.configurations:
        s, train = c.settings, c.settings["train"]
        crop = s["augment"].get("crop")
        rows.append([c.dataset, c.method, str(c.spc), c.key, s["model"], f"crop {crop}" if crop else "stored",
                     _value(train["epochs"]), _value(train["batch_size"]), _value(train["lr"]),
                     train["schedule"]["name"], train["validation_fraction"], train["select"], s["precision"],
                     s["device"]])
    return rows


def config_page(config: dict) -> str:
    """The standalone page of a grid's config as the workflow passes it: validated, without the settings that
    cannot change a result (benchmark.grid.table_config); see the module docstring."""
    grid = Grid(validate(copy.deepcopy(config)))
    head = ["dataset", "method", "spc", "settings key", "model", "input", "epochs", "batch", "max lr", "schedule",
            "val. fraction", "tested", "precision", "device"]
    runs = f"{len(config['splits'])} subset draw(s) x {len(config['seeds'])} seed(s)"
    parts = [
        '<div class="results-table">',
        f"<h2>Grid {html.escape(config['grid'])}: {len(grid.cells())} cells in {len(grid.packs)} jobs</h2>",
        f"<p class=\"legend\">Each (dataset, method, samples per class) runs {runs}: splits {config['splits']} draw "
        f"the training subsets, seeds {config['seeds']} the initialisation, batch order and augmentation. A cell's "
        "results are stored under its settings key (a hash of every result-determining setting: "
        "results/cells/&lt;dataset&gt;/&lt;method&gt;/spc&lt;n&gt;/&lt;key&gt;/settings.json says what it stands "
        "for).</p>",
        "<table>", "<thead>" + _row(head, "th") + "</thead>", "<tbody>",
        *(_row(r) for r in settings_rows(grid)), "</tbody>", "</table>",
        "<h3>The validated config, every default filled in</h3>",
        '<p class="legend">Settings that cannot change a result (device index, threads, packing, evaluation batch '
        "size) are left out: changing them reruns nothing.</p>",
        f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))}</pre>",
        "</div>",
    ]
    return html_page("\n".join(parts), f"grid {config['grid']}: resolved config")
