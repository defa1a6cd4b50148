"""Deadline chaos: thousands of webhooks whose handlers end just before, at or just after their
deadline, under each server type, counting worker deaths and unanswered webhooks.

Every answer must be HTTP 200 with a Vapi destination (the handler's, or the fallback when the
deadline won); a connection error, a 5xx, a worker that died or was restarted, or a server process
that ended counts as a failure. Exit 1 on any.

    python bench/chaos.py --requests 5000            # every server type (make chaos)
    python bench/chaos.py --requests 300 --servers gunicorn-sync gunicorn-gthread
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import http.client
import json
import pathlib
import random
import statistics
import sys
import tempfile
import time
import typing as t

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402
from flask_calltransfer import testing  # noqa: E402
from tests.servers import SERVER_KINDS  # noqa: E402
from tests.servers import ServerDied  # noqa: E402
from tests.servers import serve  # noqa: E402

SECRET = "chaos-secret-0123456789"
TIMEOUT = 0.02
#: How far around the deadline handlers end, by server type: the watchdog of threaded servers
#: fires within the interpreter's 5 ms switch interval, the timer and gevent within a millisecond.
SPREAD = {"gunicorn-sync": 0.002, "gunicorn-gevent": 0.002}
THREAD_SPREAD = 0.008
KINDS = ("spin", "sleep", "store")
#: Lines gunicorn writes when a worker died, was killed or had to be replaced.
DEATHS = ("WORKER TIMEOUT", "was sent", "Worker exiting", "exited with code", "Booting worker")


class Result(t.NamedTuple):
    server: str
    requests: int
    answers: collections.Counter[str]
    p50_ms: float
    p99_ms: float
    lost: int
    deaths: list[str]
    alive: bool

    @property
    def ok(self) -> bool:
        valid = self.answers["handler"] + self.answers["fallback"]
        return self.lost == 0 and valid == self.requests and not self.deaths and self.alive


def _ask(address: tuple[str, int], kind: str, offset: float) -> tuple[str, float]:
    body = testing.dumps(testing.vapi_transfer_request(text=f"chaos {kind} {offset:.6f}"))
    started = time.monotonic()
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request(
            "POST", "/calltransfer/vapi", body=body, headers=testing.vapi_secret_headers(SECRET)
        )
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException):
        return "lost", time.monotonic() - started
    finally:
        connection.close()
    elapsed = time.monotonic() - started
    if response.status != 200:
        return f"http-{response.status}", elapsed
    try:
        number = json.loads(data)["destination"]["number"]
    except (ValueError, KeyError, TypeError):
        return "invalid-body", elapsed
    return {"+31612345678": "handler", "+31687654321": "fallback"}.get(number, "wrong-number"), elapsed


def run(server: str, requests: int, clients: int, seed: int = 11) -> Result:
    spread = SPREAD.get(server, THREAD_SPREAD)
    rng = random.Random(seed)
    plan = [(rng.choice(KINDS), rng.uniform(-spread, spread)) for _ in range(requests)]
    with tempfile.TemporaryDirectory() as instance:
        env = {"CHAOS_INSTANCE": instance, "CHAOS_SECRET": SECRET, "CHAOS_TIMEOUT": str(TIMEOUT)}
        log_path = pathlib.Path(instance) / "server.log"
        alive = True
        try:
            with serve(server, "bench.chaos_app", "create_app", env=env, log_path=log_path) as address:
                with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                    outcomes = list(pool.map(lambda step: _ask(address, *step), plan))
                time.sleep(0.3)  # a worker ended by a late signal is reported by now
                # Read before the server is stopped: its workers' exits are no deaths.
                lines = log_path.read_text(errors="replace").splitlines()
        except ServerDied:
            alive = False
            lines = log_path.read_text(errors="replace").splitlines()
    answers = collections.Counter(status for status, _ in outcomes)
    latencies = sorted(elapsed * 1000 for _, elapsed in outcomes)
    return Result(
        server=server,
        requests=requests,
        answers=answers,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
        lost=answers["lost"],
        # The first boot of each worker is not a death.
        deaths=[line for line in lines if any(word in line for word in DEATHS)][_workers(server) :],
        alive=alive,
    )


def _workers(server: str) -> int:
    # tests/servers.py starts one gunicorn worker; the other servers log no boots.
    return 1 if server.startswith("gunicorn-") else 0


def report(result: Result) -> str:
    answers = ", ".join(f"{name}: {count}" for name, count in sorted(result.answers.items()))
    return (
        f"{result.server:17} {result.requests} requests; {answers}; unanswered {result.lost}; "
        f"worker deaths {len(result.deaths)}; p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
    )


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000, help="requests per server type")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--servers", nargs="+", default=list(SERVER_KINDS), choices=SERVER_KINDS)
    args = parser.parse_args(argv)
    print(f"Handlers end within the spread around a {TIMEOUT * 1000:.0f} ms deadline ({', '.join(KINDS)}).")
    failed = False
    for server in args.servers:
        result = run(server, args.requests, args.clients)
        print(report(result), flush=True)
        for line in result.deaths[:5]:
            print("    " + line)
        failed |= not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
