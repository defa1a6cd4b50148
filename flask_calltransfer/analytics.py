"""The transfer log: an opt-in record of every decision and outcome, kept in the store, and the
figures ``flask calltransfer stats`` prints from it."""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import math
import time
import typing as t

from flask import Flask

from . import phone
from . import signals
from .models import Attempt
from .models import Destination
from .models import TransferRequest
from .store.base import bookkeeping

if t.TYPE_CHECKING:
    from .store import Store


class TransferLog:
    """Records in the store, numbered in order, each expiring after the retention period.

    :param store: where records are kept.
    :param retention: seconds a record is kept.
    :param callers: ``"mask"`` (``+3161****678``) or ``"hash"`` (a keyed hash, so one caller's
        calls can be counted together without keeping the number).
    :param salt: the key of the hash (the app's ``SECRET_KEY`` by default).

    .. versionadded:: 0.1
    """

    def __init__(self, store: Store, *, retention: float, callers: str = "mask", salt: str = "") -> None:
        self.store = store
        self.retention = retention
        self.callers = callers
        self._salt = salt.encode()

    def caller(self, number: str | None) -> str:
        """How a caller's number is kept: masked or hashed, never in full."""
        if number is None:
            return "-"
        if self.callers == "hash":
            return "h:" + hmac.new(self._salt, number.encode(), hashlib.sha256).hexdigest()[:16]
        return phone.mask(number)

    def add(self, record: dict[str, t.Any]) -> None:
        """Append one record and add it to its hour's counters; while the store is unavailable the
        record is skipped, and logged."""
        at = record.setdefault("at", time.time())
        with bookkeeping("a transfer-log record"):
            number = self.store.incr("log:last")
            self.store.set(f"log:{number}", json.dumps(record, separators=(",", ":")), ttl=self.retention)
        counts = tally(record)
        if counts:
            with bookkeeping("the transfer log's counters"):
                self.store.add_counts(f"log:hour:{int(at // BUCKET)}", counts, ttl=self.retention + BUCKET)

    def figures(self, since: float, now: float | None = None) -> dict[str, t.Any]:
        """Transfer figures (see :func:`summarize`) from the hourly counters, for the whole hours
        from the one holding ``since`` to now: one store read per hour, however many records."""
        first, last = int(since // BUCKET), int((time.time() if now is None else now) // BUCKET)
        counts: collections.Counter[str] = collections.Counter()
        for hour in range(first, last + 1):
            counts.update(self.store.counts(f"log:hour:{hour}"))
        return summarize(counts)

    def records(self, since: float = 0.0) -> list[dict[str, t.Any]]:
        """The records still kept, oldest first, from ``since`` (a Unix time) on."""
        last = int(self.store.get("log:last") or 0)
        first = int(self.store.get("log:first") or 1)
        found: list[dict[str, t.Any]] = []
        for number in range(first, last + 1):
            text = self.store.get(f"log:{number}")
            if text is None:
                # Records expire in order: leading gaps need not be read again.
                if not found and number == first:
                    first += 1
                continue
            record = json.loads(text)
            if record.get("at", 0) >= since:
                found.append(record)
        self.store.set("log:first", str(first))
        return found

    def connect(self, app: Flask) -> None:
        """Record every decision and outcome of ``app``."""

        def basics(call: TransferRequest) -> dict[str, t.Any]:
            return {"platform": call.platform, "call_id": call.call_id, "caller": self.caller(call.caller)}

        def resolved(
            sender: Flask,
            call: TransferRequest,
            destination: Destination,
            handler: t.Any,
            elapsed: float,
            **extra: t.Any,
        ) -> None:
            self.add(
                {
                    **basics(call),
                    "kind": "resolved",
                    "destination": destination.describe(),
                    "handler": getattr(handler, "__name__", None),
                    "ms": round(elapsed * 1000, 3),
                }
            )

        def refused(sender: Flask, call: TransferRequest, reason: str, **extra: t.Any) -> None:
            self.add({**basics(call), "kind": "refused"})

        def deferred(sender: Flask, call: TransferRequest, **extra: t.Any) -> None:
            self.add({**basics(call), "kind": "deferred"})

        def failed(
            sender: Flask, call: TransferRequest, exception: BaseException, stage: str, **extra: t.Any
        ) -> None:
            self.add({**basics(call), "kind": "failed", "stage": stage})

        def outcome(
            sender: Flask, platform: str, call_id: str, outcome: str, detail: str, **extra: t.Any
        ) -> None:
            self.add({"kind": "outcome", "platform": platform, "call_id": call_id, "outcome": outcome})

        def attempted(
            sender: Flask, call: TransferRequest, destination: Destination, attempt: Attempt, **extra: t.Any
        ) -> None:
            self.add(
                {
                    **basics(call),
                    "kind": "attempt",
                    "number": attempt.number,
                    "destination": attempt.destination,
                }
            )

        def finished(
            sender: Flask,
            platform: str,
            call_id: str,
            outcome: str,
            destination: str | None,
            attempts: tuple[Attempt, ...],
            **extra: t.Any,
        ) -> None:
            self.add(
                {
                    "kind": "finished",
                    "platform": platform,
                    "call_id": call_id,
                    "outcome": outcome,
                    "destination": destination,
                    "attempts": len(attempts),
                    "first_failed": bool(attempts) and attempts[0].failed,
                }
            )

        receivers = (resolved, refused, deferred, failed, outcome, attempted, finished)
        # Kept on the app: blinker holds receivers weakly.
        app.extensions["calltransfer_log_receivers"] = receivers
        signals.transfer_resolved.connect(resolved, sender=app)
        signals.transfer_refused.connect(refused, sender=app)
        signals.transfer_deferred.connect(deferred, sender=app)
        signals.transfer_failed.connect(failed, sender=app)
        signals.transfer_outcome.connect(outcome, sender=app)
        signals.transfer_attempted.connect(attempted, sender=app)
        signals.transfer_finished.connect(finished, sender=app)


#: Seconds each dashboard bucket covers: a view of 30 days reads 720 buckets, whatever the traffic.
BUCKET = 3600

#: Latency buckets grow by this factor (an eighth of an octave): a percentile read from them is
#: within 5 % of the exact one.
_LATENCY_STEP = 2 ** (1 / 8)
_LATENCY_FLOOR_MS = 0.01


def _latency_bin(ms: float) -> int:
    if ms <= _LATENCY_FLOOR_MS:
        return 0
    return max(0, math.ceil(math.log(ms / _LATENCY_FLOOR_MS, _LATENCY_STEP)))


def _bin_middle(index: int) -> float:
    # The geometric middle of (floor * step**(i-1), floor * step**i].
    return _LATENCY_FLOOR_MS * _LATENCY_STEP ** (index - 0.5) if index else _LATENCY_FLOOR_MS


def tally(record: t.Mapping[str, t.Any]) -> dict[str, int]:
    """The counters one transfer-log record adds to, by name (what the dashboard's buckets keep).

    Every decision (resolved, refused, deferred, or a failed delivery) is one request; failures
    of any stage are counted by stage.
    """
    kind = record.get("kind")
    platform = str(record.get("platform", "-"))
    if kind == "outcome":
        return {"outcome:" + str(record.get("outcome", "unknown")): 1}
    if kind == "attempt":
        return {"attempts": 1}
    if kind == "finished":
        counts = {"finished": 1}
        if record.get("first_failed"):
            counts["first_choice_failed"] = 1
        if record.get("outcome") == "connected":
            counts["taken_by:" + str(record.get("destination") or "-")] = 1
        else:
            counts["not_taken"] = 1
        return counts
    if kind == "resolved":
        ms = float(record.get("ms", 0.0))
        return {
            "requests": 1,
            "resolved": 1,
            "platform:" + platform: 1,
            "destination:" + str(record.get("destination", "-")): 1,
            f"latency:{_latency_bin(ms)}": 1,
            "latency_us": round(ms * 1000),
        }
    if kind in ("refused", "deferred"):
        return {"requests": 1, kind: 1, "platform:" + platform: 1}
    if kind == "failed":
        stage = str(record.get("stage", "-"))
        counts = {"failures": 1, "stage:" + stage: 1}
        if stage == "deliver":
            # The destination was chosen but could not be delivered: the request ends here.
            counts.update({"requests": 1, "failed": 1, "platform:" + platform: 1})
        return counts
    return {}


def _named(counts: t.Mapping[str, int], prefix: str) -> dict[str, int]:
    found = {name.removeprefix(prefix): value for name, value in counts.items() if name.startswith(prefix)}
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def _percentile(bins: dict[int, int], fraction: float) -> float:
    total = sum(bins.values())
    rank = min(total - 1, int(round(fraction * (total - 1))))
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        if seen > rank:
            return round(_bin_middle(index), 3)
    return 0.0  # pragma: no cover - rank < total


def summarize(counts: t.Mapping[str, int]) -> dict[str, t.Any]:
    """Transfer figures from summed :func:`tally` counters: counts by destination and platform,
    refusal and failure rates, the outcome mix and handler latency percentiles."""
    total = counts.get("requests", 0)
    bins = {int(name): value for name, value in _named(counts, "latency:").items() if value > 0}
    resolved = counts.get("resolved", 0)
    return {
        "requests": total,
        "transferred": resolved,
        "refused": counts.get("refused", 0),
        "deferred": counts.get("deferred", 0),
        "failed_deliveries": counts.get("failed", 0),
        "refusal_rate": counts.get("refused", 0) / total if total else 0.0,
        "failure_rate": counts.get("failures", 0) / total if total else 0.0,
        "failures_by_stage": _named(counts, "stage:"),
        "by_destination": _named(counts, "destination:"),
        "by_platform": _named(counts, "platform:"),
        "outcomes": _named(counts, "outcome:"),
        "failover": {
            "attempts": counts.get("attempts", 0),
            "calls": counts.get("finished", 0),
            "first_choice_failed": counts.get("first_choice_failed", 0),
            "first_choice_failure_rate": (
                counts.get("first_choice_failed", 0) / counts["finished"] if counts.get("finished") else 0.0
            ),
            "taken_by": _named(counts, "taken_by:"),
            "not_taken": counts.get("not_taken", 0),
        },
        "latency_ms": {
            "p50": _percentile(bins, 0.5),
            "p90": _percentile(bins, 0.9),
            "p99": _percentile(bins, 0.99),
            "mean": counts.get("latency_us", 0) / resolved / 1000,
        }
        if bins and resolved
        else {},
    }


def stats(records: t.Iterable[t.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    """Transfer figures (see :func:`summarize`) from transfer-log records."""
    counts: collections.Counter[str] = collections.Counter()
    for record in records:
        counts.update(tally(record))
    return summarize(counts)
