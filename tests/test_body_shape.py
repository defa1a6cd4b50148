"""Bodies bounded in shape as well as size: a verified body of millions of tiny JSON values is
refused before any of them is built, in a real gunicorn worker whose peak memory is read from the
kernel."""

from __future__ import annotations

import http.client
import json
import pathlib

import pytest

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import testing
from flask_calltransfer.bodies import _values_at_most
from tests.conftest import MakeApp
from tests.conftest import Vapi
from tests.servers import gunicorn

SECRET = "shape-vapi-secret-0123456789"


def amplifier(size: int) -> bytes:
    """A verified-looking Vapi request whose artifact is ``[{},{},...]`` up to ``size`` bytes."""
    payload = testing.vapi_transfer_request(text="sales")
    head = json.dumps(payload)[:-1].encode() + b', "padding": ['
    count = (size - len(head) - 2) // 3
    return head + b",".join([b"{}"] * count) + b"]}"


def peak_rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def post(host: str, port: int, body: bytes) -> tuple[int, bytes, int]:
    connection = http.client.HTTPConnection(host, port, timeout=60)
    connection.request("POST", "/calltransfer/vapi", body=body, headers=testing.vapi_secret_headers(SECRET))
    response = connection.getresponse()
    answer = response.read()
    worker = int(response.headers["X-Served-By"])
    connection.close()
    return response.status, answer, worker


@pytest.mark.parametrize("limit", ["default", "off"])
def test_a_body_of_tiny_values_cannot_blow_up_a_worker(limit: str, tmp_path: pathlib.Path) -> None:
    env = {
        "CALLTRANSFER_VAPI_SECRET": SECRET,
        "CALLTRANSFER_STORE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "SUPPORT_LINE_LOG": str(tmp_path / "transfers.jsonl"),
        "GUNICORN_WORKER_CLASS": "sync",
    }
    if limit == "off":
        env["CALLTRANSFER_MAX_JSON_VALUES"] = "null"
    body = amplifier(10 * 1024 * 1024 - 1024)
    with gunicorn("tests.e2e_app:create_app()", env=env, workers=1) as (host, port):
        small = testing.dumps(testing.vapi_transfer_request(text="sales"))
        status, _, worker = post(host, port, small)
        assert status == 200
        before = peak_rss_kib(worker)
        status, answer, served_by = post(host, port, body)
        assert served_by == worker
        growth_mib = (peak_rss_kib(worker) - before) / 1024
        # The worker still answers normally afterwards.
        assert post(host, port, small)[0] == 200
    if limit == "default":
        assert status == 413, answer
        assert "more than 200000 JSON values" in json.loads(answer)["message"]
        # The body itself is held about three times (socket buffer, Werkzeug, the scan).
        assert growth_mib < 60, f"the worker grew by {growth_mib:.0f} MiB"
    else:
        # Without the limit the same body is built in full: what the default prevents.
        assert status == 200 and growth_mib > 150, f"the worker grew by {growth_mib:.0f} MiB"


def test_commas_and_brackets_inside_strings_are_text() -> None:
    text = "[{" * 50_000 + ",\\"
    body = json.dumps({"message": {"type": "x", "text": text + '"'}}).encode()
    assert len(body) > 2000 and _values_at_most(body, 1000)
    assert not _values_at_most(b"[" + b",".join([b"0"] * 1500) + b"]", 1000)
    assert _values_at_most(b"[" + b",".join([b"0"] * 900) + b"]", 1000)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_tiny_values_are_counted_wherever_they_sit(where: str) -> None:
    """A large body is counted from its start only as far as settles it; values packed after
    that point must still tip it over the limit."""
    text = b'"' + b"x" * 30_000 + b'"'
    dense = b",".join([b"0"] * 1_200)
    parts = {"start": [dense, text], "middle": [text, dense, text], "end": [text, text, dense]}[where]
    body = b"[" + b",".join(parts) + b"]"
    assert len(json.loads(body)) >= 1_200
    assert not _values_at_most(body, 1_000)
    assert _values_at_most(body, 1_300)


@pytest.mark.parametrize(
    "hostile",
    [
        b'"' + b'\\",' * 200_000,  # one unterminated string of escaped quotes
        b'"' + b"\\" * 300_001 + b"," * 300_000,  # backslashes, then structure
        b'["' + b'",["' * 150_000,  # many strings, the last one open
    ],
)
def test_an_unterminated_string_is_scanned_once(hostile: bytes) -> None:
    """Unterminated strings used to make the scan quadratic (600 KB took minutes, holding the
    GIL): each later quote started a new scan to the end. Now the open string is one match that
    runs to the end of the body, so no quote after it starts another."""
    from flask_calltransfer.bodies import _STRING

    matches = list(_STRING.finditer(hostile))
    assert matches and matches[-1].end() == len(hostile)


def test_unterminated_strings_count_as_text_to_the_end() -> None:
    # Everything after an opening quote that never closes is text, whatever it holds.
    assert _values_at_most(b'["a",' + b'"' + b"[,{" * 5000, 1000)


def test_a_long_call_fits_the_default(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31207948450")
    app, _ = make_app(transfers)
    turns = [("user" if i % 2 else "assistant", f"turn {i}, with a comma") for i in range(2000)]
    response = Vapi(app.test_client()).ask(messages=testing.vapi_messages(*turns))
    assert response.status_code == 200 and response.get_json()["destination"]["number"] == "+31207948450"


def test_the_limit_can_be_lowered_and_answers_in_the_platform_format(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    calls = []
    transfers.on_request(lambda call: calls.append(call) or "+31207948450")
    app, _ = make_app(transfers, CALLTRANSFER_MAX_JSON_VALUES=1000)
    response = Vapi(app.test_client()).ask(messages=testing.vapi_messages(*[("user", "hi")] * 800))
    assert response.status_code == 413 and not calls
    assert response.get_json()["message"].startswith("The request body holds more than 1000 JSON values")


@pytest.mark.parametrize("value", [0, 999, -5, 1.5, True, "many"])
def test_the_limit_must_be_sane(make_app: MakeApp, value: object) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_MAX_JSON_VALUES") as info:
        make_app(CALLTRANSFER_MAX_JSON_VALUES=value)
    assert info.value.key == "CALLTRANSFER_MAX_JSON_VALUES"
