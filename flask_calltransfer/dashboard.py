"""An opt-in dashboard page with the transfer log's figures, charts drawn on the server as SVG.

Served at ``<CALLTRANSFER_URL_PREFIX>/dashboard`` when ``CALLTRANSFER_DASHBOARD_TOKEN`` is set.
The page loads nothing from elsewhere: styles are inline and the charts are SVG in the HTML.
"""

from __future__ import annotations

import html
import time
import typing as t

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request

from .analytics import stats
from .security import matches_any

if t.TYPE_CHECKING:
    from .extension import _State

_PERIODS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
_COLOURS = ("#2f6fdf", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8a5fbf", "#6c757d", "#264653")
_OUTCOME_COLOURS = {
    "connected": "#2a9d8f",
    "busy": "#e9c46a",
    "no-answer": "#f4a261",
    "failed": "#e76f51",
    "caller-hung-up": "#8a5fbf",
    "unknown": "#6c757d",
}


def bar_chart(chart_id: str, title: str, values: t.Mapping[str, float], *, unit: str = "") -> str:
    """A horizontal bar chart as an SVG element; labels are escaped."""
    rows = list(values.items())[:12]
    width, bar_left, row_height = 640, 220, 28
    height = 40 + row_height * max(len(rows), 1)
    largest = max((value for _, value in rows), default=0) or 1
    parts = [
        f'<svg id="{chart_id}" class="chart" role="img" aria-label="{html.escape(title)}"'
        f' width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="18" class="title">{html.escape(title)}</text>',
    ]
    if not rows:
        parts.append('<text x="0" y="50" class="empty">No data yet.</text>')
    for index, (label, value) in enumerate(rows):
        y = 32 + index * row_height
        length = (width - bar_left - 70) * value / largest
        colour = _OUTCOME_COLOURS.get(label, _COLOURS[index % len(_COLOURS)])
        parts.append(f'<text x="0" y="{y + 16}" class="label">{html.escape(label[:32])}</text>')
        parts.append(
            f'<rect x="{bar_left}" y="{y + 3}" width="{length:.1f}" height="18" fill="{colour}" rx="3"/>'
        )
        parts.append(
            f'<text x="{bar_left + length + 6:.1f}" y="{y + 16}" class="value">{value:g}{unit}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Call transfers</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2733; background: #f7f8fa; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }} .muted {{ color: #5b6776; }}
.tiles {{ display: flex; gap: 12px; margin: 16px 0; flex-wrap: wrap; }}
.tile {{ background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 140px;
         box-shadow: 0 1px 2px rgba(0,0,0,.08); }}
.tile b {{ display: block; font-size: 24px; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(660px, 1fr)); gap: 16px; }}
.card {{ background: #fff; border-radius: 8px; padding: 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }}
svg .title {{ font-weight: 600; font-size: 15px; }} svg .label, svg .value, svg .empty {{ font-size: 13px; }}
svg text {{ fill: #1d2733; }} nav a {{ margin-right: 12px; }}
</style></head><body>
<h1>Call transfers</h1>
<p class="muted">The last {period}, from the transfer log. Numbers are masked.
<nav>{links}</nav></p>
<div class="tiles">
<div class="tile">Requests<b id="requests">{requests}</b></div>
<div class="tile">Transferred<b>{transferred}</b></div>
<div class="tile">Refused<b>{refusal_rate}</b></div>
<div class="tile">Failures<b>{failure_rate}</b></div>
</div>
<div class="charts">
<div class="card">{destinations}</div>
<div class="card">{outcomes}</div>
<div class="card">{platforms}</div>
<div class="card">{latency}</div>
</div>
</body></html>
"""


def _authorised(tokens: tuple[bytes, ...]) -> bool:
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not sent:
        sent = request.args.get("token", "")
    return bool(sent) and matches_any(sent.encode(), tokens)


def page() -> Response:
    state: _State = current_app.extensions["calltransfer"]
    tokens = current_app.extensions["calltransfer_dashboard_tokens"]
    if not _authorised(tokens):
        return Response(
            "A dashboard token is needed: send Authorization: Bearer <token>, or add ?token=<token>.\\n",
            status=401,
            mimetype="text/plain",
        )
    period = request.args.get("since", "7d")
    if period not in _PERIODS:
        period = "7d"
    log = state.transfer_log
    assert log is not None  # init_app requires the log for the dashboard
    figures = stats(log.records(since=time.time() - _PERIODS[period]))
    token = request.args.get("token")
    suffix = f"&token={html.escape(token)}" if token else ""
    links = " ".join(f'<a href="?since={name}{suffix}">{name}</a>' for name in _PERIODS)
    body = _PAGE.format(
        period=period,
        links=links,
        requests=figures["requests"],
        transferred=figures["transferred"],
        refusal_rate=f"{figures['refusal_rate']:.1%}",
        failure_rate=f"{figures['failure_rate']:.1%}",
        destinations=bar_chart("chart-destinations", "Transfers by destination", figures["by_destination"]),
        outcomes=bar_chart("chart-outcomes", "Outcomes", figures["outcomes"]),
        platforms=bar_chart("chart-platforms", "Requests by platform", figures["by_platform"]),
        latency=bar_chart(
            "chart-latency",
            "Handler latency",
            {name: round(value, 2) for name, value in figures["latency_ms"].items()},
            unit=" ms",
        ),
    )
    response = Response(body, mimetype="text/html")
    # Nothing loads from elsewhere, and the token must not leak through a Referer.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def make_blueprint() -> Blueprint:
    """The dashboard's blueprint, with one GET rule.

    :meta private:
    """
    blueprint = Blueprint("calltransfer_dashboard", __name__)
    blueprint.add_url_rule("/dashboard", endpoint="page", view_func=page, methods=["GET"])
    return blueprint
