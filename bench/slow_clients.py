"""Slow clients against the shipped deployment: gunicorn with example_app/gunicorn.conf.py (gevent
workers), attacked by connections that trickle their request, while legitimate webhooks go on.

Attackers need no credentials: some send headers one byte at a time (slowloris), the others send
headers and then a body one byte at a time. Legitimate Vapi and sipgate webhooks are sent one
after another meanwhile; each must be answered with HTTP 200 within sipgate's one-second budget.
Prints their p50/p99 and how the attackers were answered; exit 1 if a webhook failed or was late.

    python bench/slow_clients.py --attackers 40 --seconds 20
"""

from __future__ import annotations

import argparse
import collections
import http.client
import pathlib
import socket
import statistics
import sys
import threading
import time
import typing as t

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from flask_calltransfer import testing  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

VAPI_SECRET = "slow-vapi-secret-0123456789"
SIPGATE_TOKEN = "slow-sipgate-token-0123456789"
BUDGET = 1.0
DRIP = 0.5


class Result(t.NamedTuple):
    webhooks: int
    late_or_failed: int
    p50_ms: float
    p99_ms: float
    attacks: collections.Counter[str]

    @property
    def ok(self) -> bool:
        return self.late_or_failed == 0


def _attacker(
    address: tuple[str, int], stop: threading.Event, body_phase: bool, seen: collections.Counter[str]
) -> None:
    head = (
        b"POST /calltransfer/vapi HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\nX-Vapi-Secret: not-the-secret\r\n\r\n"
    )
    while not stop.is_set():
        try:
            with socket.create_connection(address, timeout=5) as connection:
                if body_phase:
                    connection.sendall(head)
                trickle = b"{" * 100000 if body_phase else head
                for position in range(len(trickle)):
                    if stop.wait(DRIP):
                        return
                    connection.sendall(trickle[position : position + 1])
        except OSError:
            pass
        # The server answered or closed the connection: come back, as an attacker would.
        seen["cut off by the server"] += 1


def _webhook(address: tuple[str, int], number: int) -> tuple[int, float]:
    if number % 2:
        body = testing.dumps(testing.vapi_transfer_request(text="sales please"))
        path, headers = "/calltransfer/vapi", testing.vapi_secret_headers(VAPI_SECRET)
    else:
        body = testing.dumps(testing.sipgate_event("user_speak", session_id=f"slow-{number}", text="sales"))
        path, headers = "/calltransfer/sipgate", testing.sipgate_headers(SIPGATE_TOKEN)
    started = time.monotonic()
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        connection.close()
    return status, time.monotonic() - started


def run(attackers: int, seconds: float) -> Result:
    env = {
        "CALLTRANSFER_VAPI_SECRET": VAPI_SECRET,
        "CALLTRANSFER_SIPGATE_TOKEN": SIPGATE_TOKEN,
        "CALLTRANSFER_STORE_URL": "memory://",
    }
    attacks: collections.Counter[str] = collections.Counter()
    with gunicorn("example_app:create_app()", env=env) as address:
        stop = threading.Event()
        threads = [
            threading.Thread(target=_attacker, args=(address, stop, n % 4 != 0, attacks), daemon=True)
            for n in range(attackers)
        ]
        for thread in threads:
            thread.start()
        time.sleep(min(3.0, seconds / 4))  # let the attackers settle in
        outcomes = []
        deadline = time.monotonic() + seconds
        number = 0
        while time.monotonic() < deadline:
            number += 1
            outcomes.append(_webhook(address, number))
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(5)
    latencies = sorted(elapsed * 1000 for _, elapsed in outcomes)
    bad = sum(1 for status, elapsed in outcomes if status not in (200, 204) or elapsed >= BUDGET)
    return Result(
        webhooks=len(outcomes),
        late_or_failed=bad,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
        attacks=attacks,
    )


def report(result: Result, attackers: int) -> str:
    return (
        f"{attackers} slow connections; {result.webhooks} webhooks, {result.late_or_failed} late or failed;"
        f" p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms;"
        f" attacker connections cut off by the server: {result.attacks['cut off by the server']}"
    )


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attackers", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    result = run(args.attackers, args.seconds)
    print(report(result, args.attackers))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
