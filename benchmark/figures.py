"""Saving figures the same way everywhere: PNG + PDF, written atomically, TrueType (Type 42) fonts in the PDF.

Publishers and arXiv reject or mangle PDFs with Type 3 fonts, which matplotlib embeds by default;
Type 42 keeps the text selectable and editable.
"""

from __future__ import annotations

import io
from pathlib import Path

from benchmark.io import write_atomic

FONT_RC = {"pdf.fonttype": 42, "ps.fonttype": 42}


def save_figure(fig, prefix: Path, suffixes: tuple[str, ...] = (".png", ".pdf")) -> list[Path]:
    """Write `fig` to <prefix>.png and <prefix>.pdf (Type 42 fonts), close it and return the paths."""
    import matplotlib
    import matplotlib.pyplot as plt

    prefix = Path(prefix)
    paths = []
    with matplotlib.rc_context(FONT_RC):
        for suffix in suffixes:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=suffix.lstrip("."))
            # with_suffix would cut a prefix such as "grid_v1.5" at its last dot.
            path = prefix.with_name(prefix.name + suffix)
            write_atomic(path, buffer.getvalue())
            paths.append(path)
    plt.close(fig)
    return paths


def note_figure(text: str, prefix: Path) -> list[Path]:
    """A small figure that only says `text`: written where a plot is declared but cannot be drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return save_figure(fig, prefix)
