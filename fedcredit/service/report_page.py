"""The one-page HTML credit report of an enterprise, rendered on the server.

Plain HTML with inline CSS (no script, no external resource), every value escaped: the score,
grade and reason codes of the served model, then the enterprise's query history from the
institution's log (who asked, when, why, outcome).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

_STYLE = ("body{font-family:sans-serif;max-width:52rem;margin:2rem auto;color:#222}"
          "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem;"
          "text-align:left}.grade{font-size:2.5rem;font-weight:bold}.muted{color:#666}")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_report(uscc: str, institution: str, score: Mapping[str, Any] | None,
                  history: Sequence[Mapping[str, Any]], *, now: datetime) -> str:
    """The report page.

    Parameters
    ----------
    uscc : str
        The enterprise (already validated).
    institution : str
        The institution whose service renders it.
    score : mapping or None
        The scoring answer (probability, points, grade, reasons, model_version), or None when
        the enterprise cannot be scored now (the page says so).
    history : sequence of mappings
        Query-log rows, newest first (:meth:`QueryLog.history`).
    now : datetime
        Time printed on the page.
    """
    if score is None:
        summary = '<p id="no-score">No score: the enterprise is not in both parties\' tables.</p>'
    else:
        reasons = [(r["reason"], f"{r['points_lost']:.1f}") for r in score["reasons"]]
        summary = (
            f'<p class="grade" id="grade">{escape(str(score["grade"]))}</p>'
            f'<p id="score">Score {float(score["points"]):.0f} points; probability of default '
            f'{float(score["probability"]):.2%}; model {escape(str(score["model_version"]))}</p>'
            "<h2>Reason codes</h2>" + _table(("reason", "points lost"), reasons, "reasons"))
    rows = [(h["at"], h["institution"], h["purpose"] or "", h["endpoint"], h["status"],
             h["outcome"]) for h in history]
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Credit report {escape(uscc)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Credit report</h1><p>Enterprise <code id=\"uscc\">{escape(uscc)}</code></p>"
        f"{summary}<h2>Query history</h2>"
        + _table(("time (UTC)", "institution", "purpose", "endpoint", "status", "outcome"), rows,
                 "history")
        + f'<p class="muted">Rendered by {escape(institution)} at '
        f'{escape(now.isoformat(timespec="seconds"))}.</p></body></html>')
