"""Nothing private is written anywhere: a realistic mix of traffic at DEBUG through gunicorn, then
every byte the run wrote is scanned.

The run logs at DEBUG for every library (``logging.basicConfig(level=DEBUG)`` in the app), with
gunicorn at ``--log-level debug`` and an access log. Traffic: Vapi transfer requests, tool calls
and status events; VoiceDock tool calls delivered to a local stand-in of its API; sipgate's
announce-then-transfer; a handler bug and an invalid destination, both built from the caller's
number; a replay; wrong credentials; the dashboard signed in by form and by header.

Then stderr, the access log, the example's transfer-log file and the SQLite store (database,
WAL and shared-memory files) are searched for callers' numbers in every spelling, every secret,
key and token (the wrong ones sent too), and the caller's words. Destination numbers (the
business's own desks) may sit in the store, whose replay answers need them, and nowhere else.
"""

from __future__ import annotations

import http.client
import json
import pathlib
import typing as t
import urllib.parse
import uuid

from flask_calltransfer import testing
from tests.recorder import Recorder
from tests.servers import gunicorn

SECRETS = {
    "vapi secret": "leak-vapi-secret-5x8q2m",
    "vapi hmac secret": "leak-vapi-hmac-secret-7r2k9w",
    "vapi public key": "leak-vapi-public-key-7r4t",
    "voicedock secret": "leak-voicedock-secret-3k9w",
    "voicedock api key": "leak-voicedock-api-key-6p1z",
    "sipgate token": "leak-sipgate-token-2h7v",
    "dashboard token": "leak-dashboard-token-8c3n",
    "hash key": "leak-caller-hash-key-4j6d",
    "wrong vapi secret": "leak-wrong-guess-9b5f",
    "wrong dashboard token": "leak-wrong-dashboard-1q8x",
}

#: Callers, with the spellings a number can take in text.
CALLERS = {
    "+31655501234": ("+31655501234", "31655501234", "0655501234", "655501234", "06 55501234"),
    "+14155550123": ("+14155550123", "14155550123", "4155550123", "(415) 555-0123", "415-555-0123"),
    "+4915112345099": ("+4915112345099", "4915112345099", "015112345099", "15112345099"),
    "+31687770011": ("+31687770011", "31687770011", "0687770011", "687770011"),
}
DESTINATIONS = ("+31207948450", "31207948450", "207948450", "+31207948451", "207948451", "207948400")
#: What callers say: it must stay in the conversation, never in a log or the store.
WORDS = ("tangerine-4471", "my pin is")


class Line:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def traffic(line: Line, api: Recorder) -> None:
    vapi = testing.vapi_secret_headers(SECRETS["vapi secret"])
    said = f"Hello, {WORDS[1]} {WORDS[0]} and I want sales"
    for caller in ("+31655501234", "+14155550123"):
        body = testing.dumps(testing.vapi_transfer_request(text=said, caller=caller))
        assert line.post("/calltransfer/vapi", body, vapi)[0] == 200
        # Signed over the body, so its answer is kept in the store for replays, and scanned there.
        signed = testing.vapi_hmac_headers(body, SECRETS["vapi hmac secret"])
        assert line.post("/calltransfer/vapi", body, signed)[0] == 200
        assert line.post("/calltransfer/vapi", body, signed)[0] == 200  # a replay
        for bug in ("explode", "unreachable"):
            # No department word, so the example's own rules pass it on to the buggy handlers.
            text = f"{bug}, {WORDS[1]} {WORDS[0]}"
            buggy = testing.dumps(testing.vapi_transfer_request(text=text, caller=caller))
            assert line.post("/calltransfer/vapi", buggy, vapi)[0] == 200
        call_id = str(uuid.uuid4())
        tool = testing.vapi_tool_calls(
            "transferToHuman",
            {"department": "billing"},
            control_url=f"{api.url}/{call_id}/control?token=abc",
            caller=caller,
            call_id=call_id,
            text=said,
        )
        assert line.post("/calltransfer/vapi", testing.dumps(tool), vapi)[0] == 200
        ended = testing.vapi_event(
            "status-update", call_id=call_id, status="ended", endedReason="assistant-forwarded-call"
        )
        assert line.post("/calltransfer/vapi", testing.dumps(ended), vapi)[0] == 200
    wrong = testing.vapi_secret_headers(SECRETS["wrong vapi secret"])
    body = testing.dumps(testing.vapi_transfer_request(text=said, caller="+31655501234"))
    assert line.post("/calltransfer/vapi", body, wrong)[0] == 401
    malformed = f'{{"message": {{"type": "transfer-destination-request", "customer": "+31655501234", {said}'
    assert line.post("/calltransfer/vapi", malformed.encode(), vapi)[0] == 400

    for department in ("sales", "support"):
        body = testing.dumps(
            testing.voicedock_tool_calls(
                "transfer_call", {"department": department, "reason": said}, caller="+31687770011"
            )
        )
        headers = testing.voicedock_headers(body, SECRETS["voicedock secret"])
        assert line.post("/calltransfer/voicedock", body, headers)[0] == 200
    unsigned = testing.dumps(testing.voicedock_tool_calls("transfer_call", {}, caller="+31687770011"))
    assert line.post("/calltransfer/voicedock", unsigned, {"Content-Type": "application/json"})[0] == 401

    sipgate = testing.sipgate_headers(SECRETS["sipgate token"])
    session = str(uuid.uuid4())
    answers = []
    for event, text in (
        ("session_start", None),
        ("user_speak", said),
        ("assistant_speech_ended", None),
        ("session_end", None),
    ):
        body = testing.dumps(
            testing.sipgate_event(event, session_id=session, text=text, caller="+4915112345099")
        )
        status, answer = line.post("/calltransfer/sipgate", body, sipgate)
        assert status in (200, 204)
        answers.append(json.loads(answer) if answer else None)
    # Announced first, then handed over with the caller's number put back from the event.
    assert answers[1]["type"] == "speak" and answers[2]["type"] == "transfer"
    assert answers[2]["caller_id_number"] == "+4915112345099"

    token = SECRETS["dashboard token"]
    form = urllib.parse.urlencode({"token": token}).encode()
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert line.post("/calltransfer/dashboard/sign-in", form, form_headers)[0] == 303
    wrong_form = urllib.parse.urlencode({"token": SECRETS["wrong dashboard token"]}).encode()
    assert line.post("/calltransfer/dashboard/sign-in", wrong_form, form_headers)[0] == 401
    status, page = line.get("/calltransfer/dashboard?since=24h", {"Authorization": f"Bearer {token}"})
    assert status == 200 and b"Call transfers" in page
    bad = {"Authorization": f"Bearer {SECRETS['wrong dashboard token']}"}
    assert line.get("/calltransfer/dashboard", bad)[0] == 401


def findings(where: str, data: bytes, needles: t.Iterable[tuple[str, str]]) -> list[str]:
    return [f"{what} ({needle!r}) in {where}" for what, needle in needles if needle.encode() in data]


def test_nothing_private_is_written_anywhere(api: Recorder, tmp_path: pathlib.Path) -> None:
    store = tmp_path / "store.sqlite3"
    access, stderr, transfers = tmp_path / "access.log", tmp_path / "stderr.log", tmp_path / "transfers.jsonl"
    env = {
        "E2E_LOG_LEVEL": "DEBUG",
        "CALLTRANSFER_VAPI_SECRET": SECRETS["vapi secret"],
        "CALLTRANSFER_VAPI_HMAC_SECRET": SECRETS["vapi hmac secret"],
        "CALLTRANSFER_VAPI_PUBLIC_KEY": SECRETS["vapi public key"],
        "CALLTRANSFER_VAPI_TOOLS": '["transferToHuman"]',
        "CALLTRANSFER_VAPI_CONTROL_HOSTS": json.dumps([api.url]),
        "CALLTRANSFER_VOICEDOCK_SECRET": SECRETS["voicedock secret"],
        "CALLTRANSFER_VOICEDOCK_TOOLS": '["transfer_call"]',
        "CALLTRANSFER_VOICEDOCK_API_KEY": SECRETS["voicedock api key"],
        "CALLTRANSFER_VOICEDOCK_API_URL": f"{api.url}/api/v1",
        "CALLTRANSFER_SIPGATE_TOKEN": SECRETS["sipgate token"],
        "CALLTRANSFER_LOG_TRANSFERS": "true",
        "CALLTRANSFER_LOG_CALLERS": "hash",
        "CALLTRANSFER_LOG_HASH_KEY": SECRETS["hash key"],
        "CALLTRANSFER_DASHBOARD_TOKEN": SECRETS["dashboard token"],
        "CALLTRANSFER_STORE_URL": f"sqlite:///{store}",
        "SUPPORT_LINE_LOG": str(transfers),
        "SUPPORT_LINE_HOURS": "always",
    }
    args = ["--log-level", "debug", "--access-logfile", str(access)]
    with gunicorn("tests.e2e_app:create_app()", env=env, workers=2, args=args, log_path=stderr) as address:
        traffic(Line(*address), api)
    # The traffic really went where it should: control requests were made with the keys.
    assert any(r.headers.get("Authorization") == f"Bearer {SECRETS['vapi public key']}" for r in api.received)
    assert any(SECRETS["voicedock api key"] in r.headers.get("Authorization", "") for r in api.received)

    logs = {path.name: path.read_bytes() for path in (access, stderr, transfers)}
    states = {path.name: path.read_bytes() for path in tmp_path.glob("store.sqlite3*")}
    # The logs are there and say things: an empty log would pass any scan.
    assert b"POST /calltransfer/vapi" in logs["access.log"] and b"DEBUG" in logs["stderr.log"]
    assert b"Traceback" in logs["stderr.log"] and b"LookupError" in logs["stderr.log"]
    assert b"+3165****234" in logs["stderr.log"]  # the bug's message, masked
    assert logs["transfers.jsonl"].count(b"\n") >= 8 and len(states) >= 1
    assert any(b"207948450" in data for data in states.values())  # the store is really scanned

    private = [(what, secret) for what, secret in SECRETS.items()]
    private += [
        (f"caller {number}", spelling) for number, spellings in CALLERS.items() for spelling in spellings
    ]
    private += [("the caller's words", words) for words in WORDS]
    problems = []
    for name, data in logs.items():
        problems += findings(name, data, private + [("a destination number", n) for n in DESTINATIONS])
    for name, data in states.items():
        problems += findings(name, data, private)
    assert problems == []
