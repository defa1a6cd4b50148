"""Load and soak check: the example app under gunicorn on loopback, hit with a mix of valid,
invalid and unsigned requests for a fixed time.

Reports requests, answers by status, p50/p99 latency and worker memory at the start and end. It
fails (exit 1) on any 5xx, a connection error, or worker memory that grew by more than the
allowed amount.

    python bench/soak.py --seconds 60 --clients 8
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import pathlib
import random
import statistics
import sys
import tempfile
import threading
import time
import typing as t

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_calltransfer import testing  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

VAPI_SECRET = "soak-vapi-secret"
SIPGATE_TOKEN = "soak-sipgate-token"
VOICEDOCK_SECRET = "soak-voicedock-secret"


def _requests() -> list[tuple[str, t.Callable[[], tuple[str, bytes, dict[str, str]]]]]:
    def vapi_valid() -> tuple[str, bytes, dict[str, str]]:
        text = random.choice(["sales please", "billing", "my thing is broken", "hello", "a complaint"])
        body = testing.dumps(testing.vapi_transfer_request(text=text))
        return "/calltransfer/vapi", body, testing.vapi_secret_headers(VAPI_SECRET)

    def vapi_long_call() -> tuple[str, bytes, dict[str, str]]:
        turns = [("user" if i % 2 else "bot", f"turn {i} of a long call") for i in range(400)]
        body = testing.dumps(testing.vapi_transfer_request(messages=testing.vapi_messages(*turns)))
        return "/calltransfer/vapi", body, testing.vapi_secret_headers(VAPI_SECRET)

    def vapi_event() -> tuple[str, bytes, dict[str, str]]:
        body = testing.dumps(testing.vapi_event("status-update", status="in-progress"))
        return "/calltransfer/vapi", body, testing.vapi_bearer_headers(VAPI_SECRET)

    def sipgate_call() -> tuple[str, bytes, dict[str, str]]:
        event = random.choice(["session_start", "user_speak", "assistant_speech_ended", "session_end"])
        body = testing.dumps(
            testing.sipgate_event(event, session_id=f"s-{random.randrange(50)}", text="sales please")
        )
        return "/calltransfer/sipgate", body, testing.sipgate_headers(SIPGATE_TOKEN)

    def voicedock_event() -> tuple[str, bytes, dict[str, str]]:
        body = testing.dumps(testing.voicedock_event("end-of-call-report", summary="ok"))
        return "/calltransfer/voicedock", body, testing.voicedock_headers(body, VOICEDOCK_SECRET)

    def unsigned() -> tuple[str, bytes, dict[str, str]]:
        path = random.choice(["/calltransfer/vapi", "/calltransfer/sipgate", "/calltransfer/voicedock"])
        return path, testing.dumps(testing.vapi_transfer_request()), {"Content-Type": "application/json"}

    def wrong_secret() -> tuple[str, bytes, dict[str, str]]:
        return (
            "/calltransfer/vapi",
            testing.dumps(testing.vapi_transfer_request()),
            testing.vapi_secret_headers("x"),
        )

    def stale_signature() -> tuple[str, bytes, dict[str, str]]:
        body = testing.dumps(testing.voicedock_event("status-update"))
        headers = testing.voicedock_headers(body, VOICEDOCK_SECRET, timestamp=int(time.time()) - 3600)
        return "/calltransfer/voicedock", body, headers

    def malformed() -> tuple[str, bytes, dict[str, str]]:
        body = random.choice(
            [b"{", b"[]", b"\xff\xfe", b'{"message": 5}', b'{"a":' * 5000 + b"1" + b"}" * 5000]
        )
        return "/calltransfer/vapi", body, testing.vapi_secret_headers(VAPI_SECRET)

    def oversized() -> tuple[str, bytes, dict[str, str]]:
        body = testing.dumps(testing.vapi_transfer_request(text="x" * 300_000))
        return "/calltransfer/vapi", body, testing.vapi_secret_headers(VAPI_SECRET)

    return [
        ("vapi valid", vapi_valid),
        ("vapi long call", vapi_long_call),
        ("vapi event", vapi_event),
        ("sipgate call", sipgate_call),
        ("voicedock event", voicedock_event),
        ("unsigned", unsigned),
        ("wrong secret", wrong_secret),
        ("stale signature", stale_signature),
        ("malformed", malformed),
        ("oversized", oversized),
    ]


def worker_memory(master: int) -> dict[int, int]:
    """Resident memory in KiB of each gunicorn worker (the master's children)."""
    memory = {}
    children = pathlib.Path(f"/proc/{master}/task/{master}/children")
    for pid in children.read_text().split() if children.exists() else []:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                memory[int(pid)] = int(line.split()[1])
    return memory


def gunicorn_master(port: int) -> int:
    for status in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = status.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gunicorn" in b" ".join(command) and f"127.0.0.1:{port}".encode() in command:
            return int(status.parent.name)
    raise RuntimeError("the gunicorn master process was not found")


def run(seconds: float, clients: int) -> int:
    store = pathlib.Path(tempfile.mkdtemp()) / "soak.sqlite3"
    env = {
        "CALLTRANSFER_VAPI_SECRET": VAPI_SECRET,
        "CALLTRANSFER_SIPGATE_TOKEN": SIPGATE_TOKEN,
        "CALLTRANSFER_VOICEDOCK_SECRET": VOICEDOCK_SECRET,
        "CALLTRANSFER_STORE_URL": f"sqlite:///{store}",
        "CALLTRANSFER_MAX_BODY_BYTES": str(256 * 1024),
    }
    kinds = _requests()
    statuses: collections.Counter[str] = collections.Counter()
    by_kind: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    with gunicorn("example_app:create_app()", env=env, workers=2) as (host, port):
        master = gunicorn_master(port)
        # Warm up, so start-up allocations are not counted as growth.
        for _ in range(200):
            path, body, headers = random.choice(kinds)[1]()
            connection = http.client.HTTPConnection(host, port, timeout=10)
            connection.request("POST", path, body=body, headers=headers)
            connection.getresponse().read()
            connection.close()
        memory_start = worker_memory(master)
        stop = time.monotonic() + seconds

        def client() -> None:
            while time.monotonic() < stop:
                name, build = random.choice(kinds)
                path, body, headers = build()
                started = time.perf_counter()
                try:
                    connection = http.client.HTTPConnection(host, port, timeout=10)
                    connection.request("POST", path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    status = str(response.status)
                    connection.close()
                except OSError as exc:
                    # An oversized body may be answered (413) and closed before it is all sent.
                    status = "closed early" if name == "oversized" else f"error {type(exc).__name__}"
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[status] += 1
                    by_kind[name] += 1
                    latencies.append(elapsed)
                    if status.startswith("5") or status.startswith("error"):
                        errors.append(f"{name}: {status}")

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        memory_end = worker_memory(master)
    latencies.sort()
    total = len(latencies)
    report = {
        "seconds": seconds,
        "clients": clients,
        "requests": total,
        "requests_per_second": round(total / seconds, 1),
        "by_status": dict(sorted(statuses.items())),
        "by_kind": dict(sorted(by_kind.items())),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(total * 0.99) - 1] * 1000, 2),
        "worker_rss_kib_start": memory_start,
        "worker_rss_kib_end": memory_end,
    }
    print(json.dumps(report, indent=2))
    growth = max((memory_end.get(pid, 0) - rss for pid, rss in memory_start.items()), default=0)
    failed = False
    if errors:
        print(f"FAIL: {len(errors)} server errors or connection errors, first: {errors[:5]}")
        failed = True
    # A leak grows with the request count; a few MiB of settling allocations does not.
    if growth > 20 * 1024:
        print(f"FAIL: a worker's memory grew by {growth} KiB.")
        failed = True
    if not failed:
        print(f"OK: no 5xx, largest worker memory growth {growth} KiB.")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 30)))
    parser.add_argument("--clients", type=int, default=8)
    arguments = parser.parse_args()
    sys.exit(run(arguments.seconds, arguments.clients))


if __name__ == "__main__":
    main()
