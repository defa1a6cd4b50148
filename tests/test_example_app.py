"""The example support line: office hours, the transfer log, and development credentials."""

from __future__ import annotations

import datetime
import json
import logging
import pathlib

import pytest

import example_app
from example_app import routing
from flask_calltransfer import testing


def test_support_hours_in_amsterdam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPPORT_LINE_HOURS", raising=False)
    utc = datetime.UTC
    assert routing.support_is_open(datetime.datetime(2026, 11, 23, 8, 30, tzinfo=utc))  # Monday 09:30
    assert not routing.support_is_open(datetime.datetime(2026, 11, 23, 17, 30, tzinfo=utc))  # 18:30
    assert not routing.support_is_open(datetime.datetime(2026, 11, 22, 10, 0, tzinfo=utc))  # Sunday
    assert routing.support_is_open(datetime.datetime(2026, 7, 6, 15, 30, tzinfo=utc))  # summer time, 17:30
    monkeypatch.setenv("SUPPORT_LINE_HOURS", "always")
    assert routing.support_is_open(datetime.datetime(2026, 11, 22, 3, 0, tzinfo=utc))


@pytest.mark.parametrize(("always", "expected"), [(True, "+31207948452"), (False, "+31207948499")])
def test_support_after_hours_goes_to_voicemail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, always: bool, expected: str
) -> None:
    monkeypatch.setattr(routing, "support_is_open", lambda now=None: always)
    monkeypatch.setenv("SUPPORT_LINE_LOG", str(tmp_path / "log.jsonl"))
    app = example_app.create_app({"CALLTRANSFER_VAPI_SECRET": "s", "CALLTRANSFER_STORE_URL": "memory://"})
    body = testing.dumps(testing.vapi_transfer_request(text="my printer is broken"))
    response = app.test_client().post(
        "/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers("s")
    )
    assert response.json["destination"]["number"] == expected


def test_transfer_log_is_json_lines_with_masked_callers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    log = tmp_path / "transfers.jsonl"
    monkeypatch.setenv("SUPPORT_LINE_LOG", str(log))
    app = example_app.create_app({"CALLTRANSFER_VAPI_SECRET": "s", "CALLTRANSFER_STORE_URL": "memory://"})
    client = app.test_client()
    for text in ("sales please", "I have a complaint"):
        body = testing.dumps(testing.vapi_transfer_request(text=text, caller="+31687654321"))
        client.post("/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers("s"))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["resolved", "refused"]
    assert lines[0]["destination"] == "sales (number +3120****450)" and lines[0]["handler"] == "by_keyword"
    assert all(line["caller"] == "+3168****321" for line in lines)
    assert "+31687654321" not in log.read_text()


def test_development_credentials_when_none_are_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("CALLTRANSFER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SUPPORT_LINE_LOG", str(tmp_path / "log.jsonl"))
    with caplog.at_level(logging.WARNING):
        app = example_app.create_app({"CALLTRANSFER_STORE_URL": "memory://"})
    assert "local development" in caplog.text and "local-dev-secret" not in caplog.text
    assert set(app.extensions["calltransfer"].platforms) == {"vapi", "sipgate", "voicedock"}
    app = example_app.create_app({"CALLTRANSFER_VAPI_SECRET": "real", "CALLTRANSFER_STORE_URL": "memory://"})
    assert app.config["CALLTRANSFER_VAPI_SECRET"] == "real" and not app.config.get(
        "CALLTRANSFER_SIPGATE_TOKEN"
    )


def _ask_for_sales(address: tuple[str, int]) -> None:
    import http.client

    connection = http.client.HTTPConnection(*address, timeout=10)
    body = testing.dumps(testing.vapi_transfer_request(text="sales please", caller="+31687654321"))
    connection.request(
        "POST", "/calltransfer/vapi", body=body, headers=testing.vapi_secret_headers("log-secret")
    )
    assert connection.getresponse().status == 200
    connection.close()


def test_under_gunicorn_the_access_line_ends_with_the_decision(tmp_path: pathlib.Path) -> None:
    import re

    from tests.servers import gunicorn

    stderr, access = tmp_path / "stderr.log", tmp_path / "access.log"
    env = {"CALLTRANSFER_VAPI_SECRET": "log-secret", "CALLTRANSFER_STORE_URL": "memory://"}
    args = ["--access-logfile", str(access)]
    with gunicorn("example_app:create_app()", env=env, workers=1, args=args, log_path=stderr) as address:
        _ask_for_sales(address)
    # The shipped config ends the webhook's access line with the decision, masked, instead of
    # writing a line of its own.
    (line,) = [line for line in access.read_text().splitlines() if "POST /calltransfer/vapi" in line]
    decision = r"Transfer \S+ on vapi resolved to sales \(number \+3120\*\*\*\*450\) by "
    assert re.search(r'" 200 \d+ .* ' + decision, line)
    assert "31687654321" not in access.read_text() + stderr.read_text()
    assert "resolved to" not in stderr.read_text()
    assert "Booting worker" in stderr.read_text()


def test_under_gunicorn_the_decision_line_can_be_had_back(tmp_path: pathlib.Path) -> None:
    import re

    from tests.servers import gunicorn

    stderr = tmp_path / "stderr.log"
    env = {
        "CALLTRANSFER_VAPI_SECRET": "log-secret",
        "CALLTRANSFER_STORE_URL": "memory://",
        "CALLTRANSFER_DECISION_LOG": "logger",
    }
    with gunicorn("example_app:create_app()", env=env, workers=1, log_path=stderr) as address:
        _ask_for_sales(address)
    line = next(line for line in stderr.read_text().splitlines() if "resolved to" in line)
    assert re.match(
        r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[INFO\] flask_calltransfer: Transfer ", line
    )
