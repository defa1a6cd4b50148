"""Throughput under gunicorn: the extension's app and the hand-written one, each served by
gunicorn with 2 sync workers on loopback and loaded by wrk for a bounded time.

Prints requests per second of each side and the ratio (extension / hand-written), the median of
several alternating rounds. Needs wrk (Debian package ``wrk``; ``make bench`` installs it).

    python bench/load.py [--seconds 8] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
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
from bench.overhead import vapi_body  # noqa: E402
from tests.servers import gunicorn  # noqa: E402

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Vapi-Secret"] = "{secret}"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def requests_per_second(app: str, script: pathlib.Path, seconds: int, connections: int) -> float:
    with gunicorn(app, env={}, workers=2) as (host, port):
        # A short warm-up, so both sides are measured with imported code and warm caches.
        subprocess.run(
            ["wrk", "-t1", "-c4", "-d1s", "-s", str(script), f"http://{host}:{port}/calltransfer/vapi"],
            check=True,
            capture_output=True,
        )
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
        raise RuntimeError(f"{app} answered with errors under load:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no throughput:\n{output}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--messages", type=int, default=20, help="artifact messages in the Vapi payload")
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run 'apt-get install -y wrk' (or 'make bench', which does).")

    workdir = pathlib.Path(tempfile.mkdtemp())
    body = workdir / "body.json"
    body.write_bytes(vapi_body(arguments.messages))
    script = workdir / "post.lua"
    script.write_text(LUA.format(secret=apps.VAPI_SECRET, body=body))

    sides = {"hand-written": "bench.apps:handwritten_app()", "extension": "bench.apps:extension_app()"}
    results: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(arguments.rounds):
        for name, app in sides.items():
            results[name].append(requests_per_second(app, script, arguments.seconds, arguments.connections))
    hand, ours = statistics.median(results["hand-written"]), statistics.median(results["extension"])
    print(f"Vapi transfer-destination-request, {arguments.messages} artifact messages, gunicorn 2 workers,")
    settings = f"wrk 2 threads {arguments.connections} connections {arguments.seconds} s"
    print(f"{settings}, median of {arguments.rounds}:")
    for name, median in (("hand-written", hand), ("extension", ours)):
        rounds = ", ".join(f"{value:.0f}" for value in results[name])
        print(f"{name:<14} {median:>10.1f} requests/s   (rounds: {rounds})")
    ratio = ours / hand
    print(f"ratio {ratio:.2f} {'meets' if ratio >= 0.8 else 'MISSES'} the target of at least 0.8")


if __name__ == "__main__":
    main()
