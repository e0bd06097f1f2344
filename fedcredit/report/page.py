"""The report page's building blocks: tagged numbers, tables, figures and the page shell.

Every number taken from ``results.json`` sits in
``<span data-key='["path", "to", "value"]' data-format=".4f">`` so a test can check it against
the file; a number computed from such values carries ``data-derived="<kind>"`` instead. A key
path is the chain of field names (and list positions) from the document to the value; the
documents' field names are their JSON keys, so the same path finds the value in the file.
Figures are PNGs embedded as data URIs; tables scroll inside their own box, so the page itself
never scrolls sideways, even on a phone (390 px).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from html import escape
from typing import Any

NOT_RECORDED = "not recorded"

STYLE = """*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;
color:#222;overflow-wrap:anywhere}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ccc}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;
text-align:right;overflow-wrap:normal}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top;max-width:100%}
img.figure{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#555;max-width:460px}.note{color:#666;font-size:.9rem}
.warning{color:#8a4b00;font-weight:600}
@media (max-width:600px){body{margin:1rem auto;padding:0 .5rem}figure{margin:.5rem 0}}"""


def value_at(results: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path`` or None where it is absent.

    ``path`` holds field names (of a results document or one of its sections), keys (of a
    mapping) and list positions, so it finds the same value in the typed document and in the
    decoded JSON file.
    """
    value = results
    for step in path:
        if is_dataclass(value) and isinstance(step, str) and step in _field_names(value):
            value = getattr(value, step)
        elif isinstance(value, Mapping) and step in value:
            value = value[step]
        elif (isinstance(value, (list, tuple)) and isinstance(step, int)
              and 0 <= step < len(value)):
            value = value[step]
        else:
            return None
    return value


def _field_names(document: Any) -> set[str]:
    return {f.name for f in fields(document)}


def num(results: Any, *path: str | int, spec: str = "", missing: str = NOT_RECORDED) -> str:
    """A value from ``results`` formatted with ``spec``, tagged with its path for checking.

    An absent value is written as ``missing`` without a tag (so a test never reads it as a
    number from the file).
    """
    value = value_at(results, path)
    if value is None:
        return f'<span class="missing">{escape(missing)}</span>'
    key = escape(json.dumps(list(path)), quote=True)
    text = format(value, spec)
    return f'<span class="num" data-key="{key}" data-format="{escape(spec)}">{escape(text)}</span>'


def derived(text: str, kind: str) -> str:
    """A number computed from results.json values (checked by recomputation in the tests)."""
    return f'<span class="num" data-derived="{escape(kind)}">{escape(text)}</span>'


def table(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str) -> str:
    """A table in its own horizontally scrolling box (cells are HTML already)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def note(text: str, *, css: str = "note") -> str:
    """A paragraph of explanation (escaped)."""
    return f'<p class="{css}">{escape(text)}</p>'


def figure_html(fig_id: str, alt: str, caption: str, png: bytes) -> str:
    """One embedded figure: ``<figure id=fig_id><img class="figure" alt=... src=data:...>``."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{escape(fig_id)}"><img class="figure" alt="{escape(alt)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{escape(caption)}</figcaption>'
            "</figure>")


def page(title: str, body: str) -> str:
    """The whole self-contained HTML document."""
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1>{body}</body></html>\n")


def pct(value: float, digits: int = 1) -> str:
    """A share as a percentage (``n/a`` for NaN)."""
    return "n/a" if value != value else f"{value:.{digits}%}"
