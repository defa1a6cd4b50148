"""An opt-in dashboard page with the transfer log's figures, charts drawn on the server as SVG.

Served at ``<CALLTRANSFER_URL_PREFIX>/dashboard`` when ``CALLTRANSFER_DASHBOARD_TOKEN`` is set.
The page loads nothing from elsewhere: styles are inline and the charts are SVG in the HTML.

The token arrives in an ``Authorization`` header, or once through a sign-in form that sets a
short-lived signed cookie; never in a URL, which access logs and browser history keep.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
import typing as t

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import redirect
from flask import request
from flask import url_for
from werkzeug.wrappers import Response as BaseResponse

from . import messages
from .exceptions import StoreUnavailable
from .security import matches_any
from .state import KEY

if t.TYPE_CHECKING:
    from .state import State

#: Seconds a sign-in lasts: the cookie is useless to anyone who finds it after that.
SESSION_SECONDS = 30 * 60
COOKIE = "calltransfer_dashboard"

_PERIODS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
_COLOURS = ("#2f6fdf", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8a5fbf", "#6c757d", "#264653")
_OUTCOME_COLOURS = {
    "connected": "#2a9d8f",
    "busy": "#e9c46a",
    "no-answer": "#f4a261",
    "voicemail": "#264653",
    "failed": "#e76f51",
    "cancelled": "#b5838d",
    "caller-hung-up": "#8a5fbf",
    "unknown": "#6c757d",
}


#: Pixels kept right of the bars for their value labels, at 13 px per label character at most 8.
_VALUE_ROOM = 6 + 8 * 12


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
        # Room for the longest value label ("1234.56 ms") after the longest bar.
        length = (width - bar_left - _VALUE_ROOM) * value / largest
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
<form method="post" action="{sign_out}"><button type="submit">Sign out</button></form>
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
<div class="card">{taken_by}</div>
</div>
<p class="muted" id="failover">Failover: {failover_calls} calls, the first choice failed for
{first_failed} ({first_failed_rate}).</p>
<p class="muted" id="callbacks">Open callbacks: {open_callbacks}{longest_wait}.</p>
</body></html>
"""


_SIGN_IN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Call transfers: sign in</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2733; background: #f7f8fa; }}
form {{ background: #fff; border-radius: 8px; padding: 16px; max-width: 420px;
        box-shadow: 0 1px 2px rgba(0,0,0,.08); }}
input[type=password] {{ width: 100%; padding: 6px; margin: 8px 0; box-sizing: border-box; }}
</style></head><body>
<h1>Call transfers</h1>
<p id="message">{message}</p>
<form method="post" action="{action}">
<label for="token">Dashboard token</label>
<input type="password" id="token" name="token" autocomplete="current-password" required>
<input type="hidden" name="since" value="{since}">
<button type="submit">Sign in</button>
</form>
</body></html>
"""


def _tokens() -> tuple[bytes, ...]:
    return t.cast("tuple[bytes, ...]", current_app.extensions["calltransfer_dashboard_tokens"])


def _signature(token: bytes, expires: int) -> str:
    return hmac.new(token, f"calltransfer-dashboard:{expires}".encode(), hashlib.sha256).hexdigest()


def _session_valid(cookie: str, tokens: tuple[bytes, ...]) -> bool:
    expires_text, _, signature = cookie.partition(".")
    # isascii: str.isdigit() is true for "²", which int() refuses.
    if not (expires_text.isascii() and expires_text.isdigit()) or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    now = time.time()
    if not now < expires <= now + SESSION_SECONDS:
        return False
    # Signed with the token itself: removing a token from the setting ends its sessions.
    return matches_any(signature.encode(), [_signature(token, expires).encode() for token in tokens])


def _authorised(tokens: tuple[bytes, ...]) -> bool:
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and sent:
        return matches_any(sent.strip().encode("latin-1", "replace"), tokens)
    return _session_valid(request.cookies.get(COOKIE, ""), tokens)


def _period(value: str | None) -> str:
    return value if value in _PERIODS else "7d"


_R = t.TypeVar("_R", bound=BaseResponse)


def _secure(response: _R, *, policy: str) -> _R:
    # No framing anywhere: a page that frames the dashboard could trick a signed-in user's clicks.
    response.headers["Content-Security-Policy"] = policy + "; frame-ancestors 'none'"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _sign_in_page(message: str, *, status: int = 401) -> Response:
    body = _SIGN_IN.format(
        message=html.escape(message),
        action=html.escape(url_for("calltransfer_dashboard.sign_in")),
        since=html.escape(_period(request.values.get("since"))),
    )
    response = Response(body, status=status, mimetype="text/html")
    # Scripts and posting the form anywhere but here are ruled out.
    return _secure(response, policy="default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")


def sign_in() -> BaseResponse:
    """Check a token from the form and, if it is right, set the short-lived session cookie."""
    tokens = _tokens()
    sent = request.form.get("token", "").strip().encode("utf-8", "replace")
    if not sent or not matches_any(sent, tokens):
        return _sign_in_page(messages.dashboard_wrong_token())
    expires = int(time.time()) + SESSION_SECONDS
    matched = next(token for token in tokens if hmac.compare_digest(sent, token))
    target = url_for("calltransfer_dashboard.page", since=_period(request.form.get("since")))
    response = redirect(target, code=303)
    response.set_cookie(
        COOKIE,
        f"{expires}.{_signature(matched, expires)}",
        max_age=SESSION_SECONDS,
        path=url_for("calltransfer_dashboard.page"),
        secure=request.is_secure,
        httponly=True,
        samesite="Strict",
    )
    return _secure(response, policy="default-src 'none'")


def sign_out() -> BaseResponse:
    response = redirect(url_for("calltransfer_dashboard.page"), code=303)
    response.delete_cookie(COOKIE, path=url_for("calltransfer_dashboard.page"))
    return _secure(response, policy="default-src 'none'")


def page() -> Response:
    state: State = current_app.extensions[KEY]
    if not _authorised(_tokens()):
        if "token" in request.args:
            return _sign_in_page(messages.dashboard_token_in_url(), status=400)
        return _sign_in_page(messages.dashboard_sign_in())
    period = _period(request.args.get("since"))
    log = state.transfer_log
    assert log is not None  # init_app requires the log for the dashboard
    try:
        figures = log.figures(since=time.time() - _PERIODS[period])
    except StoreUnavailable:
        response = Response(messages.dashboard_store_down() + "\n", status=503, mimetype="text/plain")
        response.headers["Retry-After"] = "5"
        return _secure(response, policy="default-src 'none'")
    links = " ".join(f'<a href="?since={name}">{name}</a>' for name in _PERIODS)
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
        taken_by=bar_chart("chart-taken-by", "Failover: who took the call", figures["failover"]["taken_by"]),
        failover_calls=figures["failover"]["calls"],
        first_failed=figures["failover"]["first_choice_failed"],
        first_failed_rate=f"{figures['failover']['first_choice_failure_rate']:.1%}",
        sign_out=html.escape(url_for("calltransfer_dashboard.sign_out")),
        **_callback_figures(state),
    )
    # Nothing loads from elsewhere.
    return _secure(
        Response(body, mimetype="text/html"),
        policy="default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    )


def _callback_figures(state: State) -> dict[str, str]:
    """How many callback tasks are open, and how long the oldest has waited."""
    try:
        waiting = state.callbacks.tasks("open")
    except StoreUnavailable:
        return {"open_callbacks": "unknown (the store cannot be read)", "longest_wait": ""}
    if not waiting:
        return {"open_callbacks": "0", "longest_wait": ""}
    oldest = min(float(task.get("requested_at") or time.time()) for task in waiting)
    minutes = max(int((time.time() - oldest) // 60), 0)
    wait = f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"
    return {"open_callbacks": str(len(waiting)), "longest_wait": f", the longest waiting {wait}"}


def make_blueprint() -> Blueprint:
    """The dashboard's blueprint, with one GET rule.

    :meta private:
    """
    blueprint = Blueprint("calltransfer_dashboard", __name__)
    blueprint.add_url_rule("/dashboard", endpoint="page", view_func=page, methods=["GET"])
    blueprint.add_url_rule("/dashboard/sign-in", endpoint="sign_in", view_func=sign_in, methods=["POST"])
    blueprint.add_url_rule("/dashboard/sign-out", endpoint="sign_out", view_func=sign_out, methods=["POST"])
    return blueprint
