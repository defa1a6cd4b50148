"""In-process overhead: the extension's route against a hand-written Flask route doing the same job.

Both apps run in this process and are called through WSGI, one request each in turn, so drift in
the machine's speed and the caches' state hit both alike. A round is a few hundred such pairs;
each figure is the median over the rounds, in microseconds per request, and the ratio is the
median of the rounds' ratios. Every request is a new one (its own call, session or tool call id,
and for VoiceDock its own signature), built before its clock starts: a repeated body would be
answered from the extension's replay memory and measure that instead of routing. Vapi is
measured with 0, 20, 200 and 2000 artifact messages, then a sipgate ``user_speak`` and a
VoiceDock tool call. The VoiceDock call-control request is left out on both sides: the
extension's is recorded instead of sent, and the record is dropped after each request, outside
the timing, so a growing list of recorded calls does not slow the garbage collector down.

    python bench/overhead.py [--rounds 40] [--pairs 300]
"""

from __future__ import annotations

import argparse
import io
import itertools
import pathlib
import statistics
import sys
import time
import typing as t

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import apps  # noqa: E402
from flask_calltransfer import testing  # noqa: E402
from flask_calltransfer.platforms.toolcalls import dry_run  # noqa: E402

SIZES = (0, 20, 200, 2000)
TARGETS = {0: 1.25, 20: 1.25, 200: 1.25, 2000: 1.1}
# Twelve characters in every body, replaced by a counter so each request is a different call.
MARK = "BENCHMARK000"
# A Vapi call id is a UUID: its last group is the counter (twelve hex digits once replaced).
VAPI_CALL_ID = f"5c4d030f-1e2b-4a3c-9d8e-{MARK}"
_counter = itertools.count()

Request = tuple[dict[str, t.Any], bytes]


def vapi_body(size: int, call_id: str = VAPI_CALL_ID) -> bytes:
    turns = [
        ("bot" if i % 2 else "user", f"This is turn {i} of the conversation so far.") for i in range(size)
    ]
    if size:
        turns[-1] = ("user", "Could you put me through to sales please?")
    messages = testing.vapi_messages(*turns)
    return testing.dumps(testing.vapi_transfer_request(messages=messages, call_id=call_id))


def sipgate_body() -> bytes:
    return testing.dumps(testing.sipgate_event("user_speak", session_id=MARK, text="sales please"))


def voicedock_body() -> bytes:
    payload = testing.voicedock_tool_calls(apps.VOICEDOCK_TOOL, {"department": "sales"}, tool_call_id=MARK)
    return testing.dumps(payload)


def _fresh(body: bytes) -> bytes:
    return body.replace(MARK.encode(), f"{next(_counter):012d}".encode())


def vapi_requests(size: int) -> t.Callable[[], Request]:
    body = vapi_body(size)
    env = environ("/calltransfer/vapi", body, testing.vapi_secret_headers(apps.VAPI_SECRET))
    return lambda: (env, _fresh(body))


def sipgate_requests() -> t.Callable[[], Request]:
    body = sipgate_body()
    env = environ("/calltransfer/sipgate", body, testing.sipgate_headers(apps.SIPGATE_TOKEN))
    return lambda: (env, _fresh(body))


def voicedock_requests() -> t.Callable[[], Request]:
    template = voicedock_body()

    def make() -> Request:
        body = _fresh(template)
        headers = testing.voicedock_headers(body, apps.VOICEDOCK_SECRET)
        return environ("/calltransfer/voicedock", body, headers), body

    return make


def environ(path: str, body: bytes, headers: dict[str, str]) -> dict[str, t.Any]:
    env: dict[str, t.Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers.items():
        if name.lower() != "content-type":
            env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def call(app: t.Any, env: dict[str, t.Any], body: bytes) -> bytes:
    env = dict(env)
    env["wsgi.input"] = io.BytesIO(body)
    status: list[str] = []
    chunks = app(env, lambda s, h, e=None: status.append(s))
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    if not status[0].startswith("200"):
        raise RuntimeError(f"benchmark request failed: {status[0]} {data[:200]!r}")
    return data


def paired_round(
    extension: t.Any, handwritten: t.Any, make: t.Callable[[], Request], pairs: int, recorded: list[t.Any]
) -> tuple[float, float]:
    """Microseconds per request of each app over ``pairs`` new requests each, called in turn;
    building the requests and dropping the recorded deliveries is not timed."""
    ours_requests = [make() for _ in range(pairs)]
    theirs_requests = [make() for _ in range(pairs)]
    ours = theirs = 0.0
    clock = time.perf_counter
    for (ours_env, ours_body), (theirs_env, theirs_body) in zip(ours_requests, theirs_requests, strict=True):
        started = clock()
        call(handwritten, theirs_env, theirs_body)
        middle = clock()
        call(extension, ours_env, ours_body)
        ended = clock()
        theirs += middle - started
        ours += ended - middle
        recorded.clear()
    return ours / pairs * 1e6, theirs / pairs * 1e6


def sdk_validation(body: bytes, seconds: float) -> float | None:
    """Microseconds to validate the same payload with the official vapi_server_sdk models."""
    try:
        from vapi import ServerMessageTransferDestinationRequest  # type: ignore[import-not-found]
    except ImportError:
        return None
    import json

    message = json.loads(body)["message"]
    count, started = 0, time.perf_counter()
    while True:
        ServerMessageTransferDestinationRequest.model_validate(message)
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and count >= 5:
            return elapsed / count * 1e6


def _target(reply: bytes) -> str:
    import json

    data = json.loads(reply)
    if "results" in data:
        return str([result["result"] for result in data["results"]])
    return str(data.get("destination", {}).get("number") or data.get("target_phone_number"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=300, help="most requests per app and round")
    arguments = parser.parse_args()

    extension, handwritten = apps.extension_app(), apps.handwritten_app()
    cases: list[tuple[str, t.Callable[[], Request], int | None, float]] = [
        (f"vapi, {size} messages", vapi_requests(size), size, TARGETS[size]) for size in SIZES
    ]
    cases.append(("sipgate user_speak", sipgate_requests(), None, 1.25))
    cases.append(("voicedock tool call", voicedock_requests(), None, 1.25))

    with dry_run() as recorded:
        # Same answer from both sides before timing anything.
        for name, make, _, _ in cases:
            env, body = make()
            ours, theirs = call(extension, env, body), call(handwritten, *make())
            if _target(ours) != _target(theirs):
                raise RuntimeError(f"{name}: the two apps disagree: {ours[:200]!r} / {theirs[:200]!r}")
            for _ in range(200):
                call(extension, *make())
                call(handwritten, *make())
            recorded.clear()

        print(
            f"{'case':<24} {'bytes':>9} {'hand-written µs':>16} {'extension µs':>13} {'ratio':>6}"
            f" {'SDK validate µs':>16}"
        )
        results = []
        for name, make, size, target in cases:
            ours_times, theirs_times, ratios = [], [], []
            # Large payloads take fewer pairs a round: about a tenth of a second of them each.
            sample = paired_round(extension, handwritten, make, 10, recorded)
            pairs = max(10, min(arguments.pairs, int(0.1 / (sum(sample) * 1e-6))))
            for _ in range(arguments.rounds):
                ours, theirs = paired_round(extension, handwritten, make, pairs, recorded)
                theirs_times.append(theirs)
                ours_times.append(ours)
                ratios.append(ours / theirs)
            ours, theirs, ratio = (statistics.median(v) for v in (ours_times, theirs_times, ratios))
            body = make()[1]
            sdk = sdk_validation(body, 0.3) if size is not None else None
            results.append((name, ratio, target))
            if sdk is not None:
                sdk_text = f"{sdk:16.1f}"
            else:
                sdk_text = f"{'not installed' if size is not None else '-':>16}"
            print(f"{name:<24} {len(body):>9} {theirs:>16.1f} {ours:>13.1f} {ratio:>6.2f} {sdk_text}")
    print()
    for name, ratio, target in results:
        verdict = "meets" if ratio <= target else "MISSES"
        print(f"{name}: ratio {ratio:.2f} {verdict} the target of {target}")


if __name__ == "__main__":
    main()
