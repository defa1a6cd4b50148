"""Throughput under gunicorn: the extension's app and the hand-written one, each served by
gunicorn with the deployment ``make run`` uses (``example_app/gunicorn.conf.py``: gevent workers;
the extension on the SQLite store in a temporary folder) on loopback, loaded by wrk for a bounded
time. Every request wrk sends is a new call (the call id carries a counter), as live traffic is,
so the extension routes each one instead of answering from its replay memory.

Both are served at once and loaded in turns, the order swapped every round. Prints requests per
second of each side and the ratio (extension / hand-written): the median of the rounds' ratios.
Needs wrk (Debian package ``wrk``; ``make bench`` installs it).

    python bench/load.py [--seconds 5] [--rounds 6] [--connections 16]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import apps  # noqa: E402
from bench.overhead import MARK  # noqa: E402
from bench.overhead import vapi_body  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Vapi-Secret"] = "{secret}"
local f = io.open("{body}", "rb")
local template = f:read("*all")
f:close()
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end
local counter = 0
function request()
  counter = counter + 1
  local mark = string.format("%s%02d%07d", "{prefix}", thread_id or 0, counter)
  local body = (template:gsub("{mark}", mark))
  return wrk.format(nil, nil, nil, body)
end
"""


def requests_per_second(
    address: tuple[str, int], script: pathlib.Path, seconds: int, connections: int
) -> float:
    host, port = address
    output = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "-s",
            str(script),
            f"http://{host}:{port}/calltransfer/vapi",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if re.search(r"Non-2xx or 3xx responses: \d+", output):
        raise RuntimeError(f"{address} answered with errors under load:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no throughput:\n{output}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--messages", type=int, default=20, help="artifact messages in the Vapi payload")
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run 'apt-get install -y wrk' (or 'make bench', which does).")

    workdir = pathlib.Path(tempfile.mkdtemp())
    body = workdir / "body.json"
    body.write_bytes(vapi_body(arguments.messages))
    store = f"sqlite:///{workdir / 'store.sqlite3'}"

    sides = {"hand-written": "bench.apps:handwritten_app()", "extension": "bench.apps:extension_app()"}
    results: dict[str, list[float]] = {name: [] for name in sides}
    ratios: list[float] = []
    runs = itertools.count()

    def script() -> pathlib.Path:
        # Each wrk run numbers its calls afresh: a prefix per run keeps them new in the store. Hex
        # digits only, as the counter ends the UUID that a Vapi call id is.
        prefix = f"e{next(runs):02d}"
        path = workdir / f"{prefix}.lua"
        path.write_text(LUA.format(secret=apps.VAPI_SECRET, body=body, prefix=prefix, mark=MARK))
        return path

    # Both servers run for the whole measurement and take turns, the order swapped every round:
    # each round's ratio compares runs a few seconds apart, so the machine's slower and faster
    # spells (a shared VM's) fall on both sides alike.
    with contextlib.ExitStack() as stack:
        addresses = {
            name: stack.enter_context(gunicorn(app, env={"BENCH_STORE_URL": store}, workers=2))
            for name, app in sides.items()
        }
        for address in addresses.values():
            # A warm-up, so both sides are measured with imported code and warm caches.
            requests_per_second(address, script(), 2, 4)
        for round_ in range(arguments.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            measured = {
                name: requests_per_second(addresses[name], script(), arguments.seconds, arguments.connections)
                for name in order
            }
            for name, rps in measured.items():
                results[name].append(rps)
            ratios.append(measured["extension"] / measured["hand-written"])
    hand, ours = statistics.median(results["hand-written"]), statistics.median(results["extension"])
    print(f"Vapi transfer-destination-request, {arguments.messages} artifact messages,")
    print("gunicorn as make run serves it (example_app/gunicorn.conf.py), the extension on SQLite,")
    settings = f"wrk 2 threads {arguments.connections} connections {arguments.seconds} s"
    print(f"{settings}, both served at once and taking turns, median of {arguments.rounds} rounds:")
    for name, median in (("hand-written", hand), ("extension", ours)):
        rounds = ", ".join(f"{value:.0f}" for value in results[name])
        print(f"{name:<14} {median:>10.1f} requests/s   (rounds: {rounds})")
    ratio = statistics.median(ratios)
    each = ", ".join(f"{value:.2f}" for value in ratios)
    print(f"ratio {ratio:.2f} (median of the rounds' ratios: {each})")
    print(f"{'meets' if ratio >= 0.9 else 'MISSES'} the target of at least 0.9")


if __name__ == "__main__":
    main()
