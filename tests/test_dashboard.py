"""The dashboard: token protection, server-drawn SVG charts, and a real headless Chromium."""

from __future__ import annotations

import contextlib
import html
import http.client
import http.server
import pathlib
import typing as t

import pytest

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import testing
from flask_calltransfer.dashboard import bar_chart
from tests.conftest import MakeApp
from tests.conftest import Vapi
from tests.servers import ROOT
from tests.servers import chromium
from tests.servers import gunicorn
from tests.servers import http_server

TOKEN = "dashboard-token-0123"
SCREENSHOT = ROOT / "build" / "dashboard.png"


def dashboard_app(make_app: MakeApp) -> t.Any:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31207948450" if "sales" in call.text else None)
    app, _ = make_app(transfers, CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN=TOKEN)
    return app


def signed_in(client: t.Any, token: str = TOKEN) -> t.Any:
    response = client.post("/calltransfer/dashboard/sign-in", data={"token": token, "since": "24h"})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def test_the_token_is_required(make_app: MakeApp) -> None:
    client = dashboard_app(make_app).test_client()
    response = client.get("/calltransfer/dashboard")
    assert response.status_code == 401 and 'name="token"' in response.get_data(as_text=True)
    assert client.get("/calltransfer/dashboard", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert (
        client.get("/calltransfer/dashboard", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )


def test_a_token_in_the_url_is_refused_and_not_echoed(make_app: MakeApp) -> None:
    client = dashboard_app(make_app).test_client()
    response = client.get(f"/calltransfer/dashboard?token={TOKEN}&since=24h")
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and "not accepted in the page's address" in page
    assert TOKEN not in page and "token=" not in page
    assert "calltransfer_dashboard" not in response.headers.get("Set-Cookie", "")


def test_signing_in_sets_a_short_lived_strict_cookie(make_app: MakeApp) -> None:
    client = dashboard_app(make_app).test_client()
    wrong = client.post("/calltransfer/dashboard/sign-in", data={"token": "wrong"})
    assert wrong.status_code == 401 and "not the dashboard token" in wrong.get_data(as_text=True)
    assert "Set-Cookie" not in wrong.headers
    response = signed_in(client)
    assert response.headers["Location"] == "/calltransfer/dashboard?since=24h"
    cookie = response.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Max-Age=1800", "Path=/calltransfer/dashboard"):
        assert attribute in cookie
    assert TOKEN not in cookie and "Secure" not in cookie  # plain HTTP here; HTTPS adds Secure
    page = client.get("/calltransfer/dashboard?since=24h")
    assert page.status_code == 200 and TOKEN not in page.get_data(as_text=True)
    assert "token=" not in page.get_data(as_text=True)
    client.post("/calltransfer/dashboard/sign-out")
    assert client.get("/calltransfer/dashboard").status_code == 401


def test_https_sign_in_cookies_are_secure(make_app: MakeApp) -> None:
    client = dashboard_app(make_app).test_client()
    response = client.post(
        "/calltransfer/dashboard/sign-in", data={"token": TOKEN}, base_url="https://localhost"
    )
    assert "; Secure" in response.headers["Set-Cookie"]


def test_a_cookie_with_non_ascii_digits_is_refused_not_a_500(make_app: MakeApp) -> None:
    app = dashboard_app(make_app)
    client = app.test_client(use_cookies=False)
    for value in ("\xb2.x", "\xb9\xb2\xb3.abc", "\u0663.abc"):
        # The raw header, as a client sends it: Werkzeug decodes it as latin-1.
        environ = {"HTTP_COOKIE": f"calltransfer_dashboard={value}"}
        response = client.get("/calltransfer/dashboard", environ_overrides=environ)
        assert response.status_code == 401


def test_a_forged_or_stale_cookie_is_refused(make_app: MakeApp) -> None:
    import hashlib
    import hmac
    import time

    client = dashboard_app(make_app).test_client()

    def with_cookie(value: str) -> int:
        client.set_cookie("calltransfer_dashboard", value, path="/calltransfer/dashboard")
        return int(client.get("/calltransfer/dashboard").status_code)

    def signed(expires: int, key: str = TOKEN) -> str:
        message = f"calltransfer-dashboard:{expires}".encode()
        return f"{expires}.{hmac.new(key.encode(), message, hashlib.sha256).hexdigest()}"

    now = int(time.time())
    assert with_cookie(signed(now + 600)) == 200
    assert with_cookie(signed(now - 1)) == 401  # expired
    assert with_cookie(signed(now + 10 * 3600)) == 401  # longer than a session may last
    assert with_cookie(signed(now + 600, key="another-token-0000")) == 401
    assert with_cookie(f"{now + 600}.{'0' * 64}") == 401
    assert with_cookie("garbage") == 401


def test_rotating_the_token_out_ends_its_sessions(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    old, new = "old-dashboard-token-1", "new-dashboard-token-2"
    app, _ = make_app(transfers, CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN=[old, new])
    client = app.test_client()
    signed_in(client, old)
    cookie = client.get_cookie("calltransfer_dashboard", path="/calltransfer/dashboard")
    assert cookie is not None and client.get("/calltransfer/dashboard").status_code == 200
    rotated, _ = make_app(CallTransfer(), CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN=new)
    other = rotated.test_client()
    other.set_cookie("calltransfer_dashboard", cookie.value, path="/calltransfer/dashboard")
    assert other.get("/calltransfer/dashboard").status_code == 401


def test_the_page_shows_the_figures_as_svg(make_app: MakeApp) -> None:
    app = dashboard_app(make_app)
    vapi = Vapi(app.test_client())
    for text in ("sales", "sales", "nothing"):
        vapi.ask(text=text)
    client = app.test_client()
    signed_in(client)
    response = client.get("/calltransfer/dashboard?since=24h")
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    assert response.headers["Referrer-Policy"] == "no-referrer"
    for chart in ("chart-destinations", "chart-outcomes", "chart-platforms", "chart-latency"):
        assert f'id="{chart}"' in page
    assert '<b id="requests">3</b>' in page
    assert "number +3120****450" in page and "+31207948450" not in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_labels_are_escaped() -> None:
    svg = bar_chart("c", "Title <b>", {"<script>alert(1)</script>": 2})
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_value_labels_fit_inside_the_chart() -> None:
    import re

    svg = bar_chart("c", "Latency", {"p50": 2.5, "p99": 1234.56}, unit=" ms")
    width = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    for x, text in re.findall(r'<text x="([\d.]+)" y="\d+" class="value">([^<]+)</text>', svg):
        # 8 px a character is wider than the 13 px system font's digits.
        assert float(x) + 8 * len(text) <= width, (x, text)


def test_the_dashboard_needs_the_log(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_LOG_TRANSFERS") as info:
        make_app(CALLTRANSFER_DASHBOARD_TOKEN=TOKEN)
    assert info.value.key == "CALLTRANSFER_LOG_TRANSFERS"


def test_no_dashboard_without_a_token(make_app: MakeApp) -> None:
    app, _ = make_app(CALLTRANSFER_LOG_TRANSFERS=True)
    assert app.test_client().get("/calltransfer/dashboard").status_code == 404


@contextlib.contextmanager
def sign_in_launcher(action: str) -> t.Iterator[str]:
    """A page on another loopback port (the same site) that submits the sign-in form, as a person
    typing the token would: the browser then follows the redirect with its new cookie."""
    page = (
        f'<form method="post" action="{action}"><input name="token" value="{TOKEN}">'
        '<input name="since" value="7d"></form><script>document.forms[0].submit()</script>'
    ).encode()

    class Launcher(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: t.Any) -> None:
            pass

    with http_server(Launcher) as base:
        yield base + "/"


def test_a_real_browser_renders_the_charts(tmp_path: pathlib.Path) -> None:
    env = {
        "CALLTRANSFER_VAPI_SECRET": "browser-secret",
        "CALLTRANSFER_LOG_TRANSFERS": "true",
        "CALLTRANSFER_DASHBOARD_TOKEN": TOKEN,
        "CALLTRANSFER_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "SUPPORT_LINE_LOG": str(tmp_path / "transfers.jsonl"),
    }
    with gunicorn("example_app:create_app()", env=env, workers=2) as (host, port):
        for text in ("sales please", "sales", "billing", "a complaint", "hello", "invoice question"):
            connection = http.client.HTTPConnection(host, port, timeout=10)
            body = testing.dumps(testing.vapi_transfer_request(text=text))
            connection.request(
                "POST", "/calltransfer/vapi", body=body, headers=testing.vapi_secret_headers("browser-secret")
            )
            assert connection.getresponse().status == 200
            connection.close()
        for call_id, reason in (
            ("o-1", "assistant-forwarded-call"),
            ("o-2", "call.forwarding.operator-busy"),
        ):
            connection = http.client.HTTPConnection(host, port, timeout=10)
            body = testing.dumps(
                testing.vapi_event("status-update", call_id=call_id, status="ended", endedReason=reason)
            )
            connection.request(
                "POST", "/calltransfer/vapi", body=body, headers=testing.vapi_secret_headers("browser-secret")
            )
            assert connection.getresponse().status == 200
            connection.close()
        with sign_in_launcher(f"http://{host}:{port}/calltransfer/dashboard/sign-in") as url:
            wait = "--virtual-time-budget=10000"
            dom = chromium("--dump-dom", wait, url).stdout.decode()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            chromium(f"--screenshot={SCREENSHOT}", wait, "--window-size=1400,1000", "--hide-scrollbars", url)
    assert '<b id="requests">6</b>' in dom
    for chart in ("chart-destinations", "chart-outcomes", "chart-platforms", "chart-latency"):
        assert f'id="{chart}"' in dom
    assert dom.count("<rect") >= 8
    assert "connected" in dom and "busy" in dom
    image = SCREENSHOT.read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 10_000
