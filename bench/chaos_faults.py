"""Fault chaos: the shipped deployment under steady load while its dependencies fail in turn.

gunicorn with example_app/gunicorn.conf.py (2 gevent workers) serves the example support line with
a real Redis as its store and a local stand-in for VoiceDock's API. Client threads send Vapi
transfer requests, announced sipgate transfers (user_speak, then assistant_speech_ended) and
VoiceDock tool calls (each delivered twice, to test exactly-once). Meanwhile, in phases: Redis is
stopped and restarted, paused with SIGSTOP and resumed, and the API answers 500, drips its answer
one byte every 0.2 s, redirects, and resets connections.

Reported per phase: requests, answers by status, p50/p99, answers later than the platform's
budget, tool-call replies without their id, control requests sent twice for one tool call, and
announced sipgate transfers that were never handed over. Exit 1 on any 5xx, connection error,
late answer or reply without its tool call id.

    python bench/chaos_faults.py --phase-seconds 10
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import http.client
import json
import pathlib
import signal
import statistics
import sys
import threading
import time
import typing as t
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from flask_calltransfer import testing  # noqa: E402
from tests.faulty_http import FaultyServer  # noqa: E402
from tests.servers import gunicorn  # noqa: E402
from tests.servers import redis_process  # noqa: E402

VAPI_SECRET = "chaos-vapi-secret-0123456789"
SIPGATE_TOKEN = "chaos-sipgate-token-0123456789"
VOICEDOCK_SECRET = "chaos-voicedock-secret-0123456789"
BUDGETS = {"vapi": 20.0, "sipgate": 1.0, "voicedock": 10.0}
PHASES = (
    "normal",
    "redis stopped",
    "redis restarted",
    "redis paused",
    "redis resumed",
    "api 500",
    "api drips",
    "api redirects",
    "api resets",
    "normal again",
)


@dataclasses.dataclass
class Phase:
    name: str
    statuses: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    latencies: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: collections.defaultdict(list)
    )
    late: int = 0
    missing_ids: int = 0
    lost_handovers: int = 0
    tool_calls: list[str] = dataclasses.field(default_factory=list)

    def record(self, platform: str, status: int, elapsed: float) -> None:
        self.statuses[str(status)] += 1
        self.latencies[platform].append(elapsed * 1000)
        if elapsed > BUDGETS[platform]:
            self.late += 1

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def failures(self) -> int:
        bad = sum(n for status, n in self.statuses.items() if status == "lost" or status.startswith("5"))
        return bad + self.late + self.missing_ids


def _post(address: tuple[str, int], path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        connection.close()


def _timed(
    phase: Phase, platform: str, address: tuple[str, int], path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    started = time.monotonic()
    status, data = _post(address, path, body, headers)
    phase.record(platform, status if status else 0, time.monotonic() - started)
    if not status:
        phase.statuses["0"] -= 1
        phase.statuses["lost"] += 1
    return status, data


def _client(address: tuple[str, int], current: list[Phase], stop: threading.Event, kind: int) -> None:
    while not stop.is_set():
        phase = current[0]
        if kind == 0:
            body = testing.dumps(testing.vapi_transfer_request(text="sales please"))
            _timed(
                phase, "vapi", address, "/calltransfer/vapi", body, testing.vapi_secret_headers(VAPI_SECRET)
            )
        elif kind == 1:
            session = f"chaos-{uuid.uuid4().hex[:12]}"
            headers = testing.sipgate_headers(SIPGATE_TOKEN)
            body = testing.dumps(testing.sipgate_event("user_speak", session_id=session, text="sales please"))
            status, data = _timed(phase, "sipgate", address, "/calltransfer/sipgate", body, headers)
            if status == 200 and json.loads(data).get("type") == "speak":
                body = testing.dumps(testing.sipgate_event("assistant_speech_ended", session_id=session))
                status, data = _timed(phase, "sipgate", address, "/calltransfer/sipgate", body, headers)
                if status != 200 or json.loads(data or b"{}").get("type") != "transfer":
                    phase.lost_handovers += 1
        else:
            call_id = f"vd-{uuid.uuid4().hex[:12]}"
            tool_call_id = f"tool_{uuid.uuid4().hex[:12]}"
            body = testing.dumps(
                testing.voicedock_tool_calls(
                    "transfer_call", {"department": "sales"}, tool_call_id=tool_call_id, call_id=call_id
                )
            )
            headers = testing.voicedock_headers(body, VOICEDOCK_SECRET)
            phase.tool_calls.append(call_id)
            for _ in range(2):
                status, data = _timed(phase, "voicedock", address, "/calltransfer/voicedock", body, headers)
                if status == 200 and f'"tool_call_id":"{tool_call_id}"'.encode() not in data.replace(
                    b" ", b""
                ):
                    phase.missing_ids += 1
        time.sleep(0.01)


def run(phase_seconds: float, clients_per_kind: int = 2) -> list[Phase]:
    api = FaultyServer()
    phases: list[Phase] = []
    # The Redis restarted mid-run on the same port lives until the end.
    later = contextlib.ExitStack()
    try:
        with redis_process() as (url, redis):
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            env = {
                "CALLTRANSFER_STORE_URL": url,
                "CALLTRANSFER_VAPI_SECRET": VAPI_SECRET,
                "CALLTRANSFER_SIPGATE_TOKEN": SIPGATE_TOKEN,
                "CALLTRANSFER_VOICEDOCK_SECRET": VOICEDOCK_SECRET,
                "CALLTRANSFER_VOICEDOCK_TOOLS": '["transfer_call"]',
                "CALLTRANSFER_VOICEDOCK_API_KEY": "chaos-api-key",
                "CALLTRANSFER_VOICEDOCK_API_URL": f"{api.url}/api/v1",
                "CALLTRANSFER_HTTP_TIMEOUT": "2.0",
            }
            with gunicorn("example_app:create_app()", env=env) as address:
                current = [Phase("warm-up")]
                stop = threading.Event()
                threads = [
                    threading.Thread(target=_client, args=(address, current, stop, kind), daemon=True)
                    for kind in range(3)
                    for _ in range(clients_per_kind)
                ]
                for thread in threads:
                    thread.start()
                time.sleep(1)
                for name in PHASES:
                    if name == "redis stopped":
                        redis.terminate()
                        redis.wait(10)
                    elif name == "redis restarted":
                        _, redis = later.enter_context(redis_process(port))
                    elif name == "redis paused":
                        redis.send_signal(signal.SIGSTOP)
                    elif name == "redis resumed":
                        redis.send_signal(signal.SIGCONT)
                    api.mode = {
                        "api 500": "/error",
                        "api drips": "/drip-body",
                        "api redirects": "/redirect",
                        "api resets": "/reset",
                    }.get(name)
                    phase = Phase(name)
                    current[0] = phase
                    phases.append(phase)
                    time.sleep(phase_seconds)
                stop.set()
                for thread in threads:
                    thread.join(40)
    finally:
        later.close()
        api.stop()
    for phase in phases:
        control = collections.Counter(
            path.split("/")[4] for path in api.hits.elements() if path.startswith("/api/v1/calls/")
        )
        phase.tool_calls = [call for call in phase.tool_calls if control[call] > 1]
    return phases


def report(phase: Phase) -> str:
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(phase.statuses.items()) if n)
    latency = "; ".join(
        f"{platform} p50 {statistics.median(values):.0f} ms p99 {percentile(values, 0.99):.0f} ms"
        for platform, values in sorted(phase.latencies.items())
    )
    return (
        f"{phase.name:16} {phase.requests:5} requests ({statuses}); {latency}; late {phase.late};"
        f" replies without tool call id {phase.missing_ids}; sent twice {len(phase.tool_calls)};"
        f" announced but not handed over {phase.lost_handovers}"
    )


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase-seconds", type=float, default=10)
    args = parser.parse_args(argv)
    phases = run(args.phase_seconds)
    for phase in phases:
        print(report(phase), flush=True)
    return 1 if any(phase.failures for phase in phases) else 0


if __name__ == "__main__":
    sys.exit(main())
