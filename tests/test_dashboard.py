"""The dashboard: token protection, server-drawn SVG charts, and a real headless Chromium."""

from __future__ import annotations

import http.client
import pathlib
import shutil
import subprocess
import tempfile
import typing as t

import pytest

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import testing
from flask_calltransfer.dashboard import bar_chart
from tests.conftest import MakeApp
from tests.conftest import Vapi
from tests.servers import ROOT
from tests.servers import gunicorn

TOKEN = "dashboard-token-0123"
SCREENSHOT = ROOT / "build" / "dashboard.png"


def dashboard_app(make_app: MakeApp) -> t.Any:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31207948450" if "sales" in call.text else None)
    app, _ = make_app(transfers, CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN=TOKEN)
    return app


def test_the_token_is_required(make_app: MakeApp) -> None:
    client = dashboard_app(make_app).test_client()
    assert client.get("/calltransfer/dashboard").status_code == 401
    assert client.get("/calltransfer/dashboard?token=wrong").status_code == 401
    assert client.get("/calltransfer/dashboard", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert (
        client.get("/calltransfer/dashboard", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )
    assert client.get(f"/calltransfer/dashboard?token={TOKEN}").status_code == 200


def test_the_page_shows_the_figures_as_svg(make_app: MakeApp) -> None:
    app = dashboard_app(make_app)
    vapi = Vapi(app.test_client())
    for text in ("sales", "sales", "nothing"):
        vapi.ask(text=text)
    response = app.test_client().get(f"/calltransfer/dashboard?token={TOKEN}&since=24h")
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    for chart in ("chart-destinations", "chart-outcomes", "chart-platforms", "chart-latency"):
        assert f'id="{chart}"' in page
    assert '<b id="requests">3</b>' in page
    assert "number +3120****450" in page and "+31207948450" not in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_labels_are_escaped() -> None:
    svg = bar_chart("c", "Title <b>", {"<script>alert(1)</script>": 2})
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_the_dashboard_needs_the_log(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_LOG_TRANSFERS") as info:
        make_app(CALLTRANSFER_DASHBOARD_TOKEN=TOKEN)
    assert info.value.key == "CALLTRANSFER_LOG_TRANSFERS"


def test_no_dashboard_without_a_token(make_app: MakeApp) -> None:
    app, _ = make_app(CALLTRANSFER_LOG_TRANSFERS=True)
    assert app.test_client().get("/calltransfer/dashboard").status_code == 404


def chromium(*args: str) -> subprocess.CompletedProcess[bytes]:
    browser = shutil.which("chromium")
    if browser is None:
        raise RuntimeError("chromium is not installed. Install Debian's chromium package (.ci/run does).")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )


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
        url = f"http://{host}:{port}/calltransfer/dashboard?token={TOKEN}"
        dom = chromium("--dump-dom", url).stdout.decode()
        SCREENSHOT.parent.mkdir(exist_ok=True)
        chromium(f"--screenshot={SCREENSHOT}", "--window-size=1400,1000", "--hide-scrollbars", url)
    assert '<b id="requests">6</b>' in dom
    for chart in ("chart-destinations", "chart-outcomes", "chart-platforms", "chart-latency"):
        assert f'id="{chart}"' in dom
    assert dom.count("<rect") >= 8
    assert "connected" in dom and "busy" in dom
    image = SCREENSHOT.read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 10_000
