"""The transfer log: an opt-in record of every decision and outcome, kept in the store, and the
figures ``flask calltransfer stats`` prints from it."""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import statistics
import time
import typing as t

from flask import Flask

from . import phone
from . import signals
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
        """Append one record; while the store is unavailable the record is skipped, and logged."""
        record.setdefault("at", time.time())
        with bookkeeping("a transfer-log record"):
            number = self.store.incr("log:last")
            self.store.set(f"log:{number}", json.dumps(record, separators=(",", ":")), ttl=self.retention)

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

        def failed(
            sender: Flask, call: TransferRequest, exception: BaseException, stage: str, **extra: t.Any
        ) -> None:
            self.add({**basics(call), "kind": "failed", "stage": stage})

        def outcome(
            sender: Flask, platform: str, call_id: str, outcome: str, detail: str, **extra: t.Any
        ) -> None:
            self.add({"kind": "outcome", "platform": platform, "call_id": call_id, "outcome": outcome})

        receivers = (resolved, refused, failed, outcome)
        # Kept on the app: blinker holds receivers weakly.
        app.extensions["calltransfer_log_receivers"] = receivers
        signals.transfer_resolved.connect(resolved, sender=app)
        signals.transfer_refused.connect(refused, sender=app)
        signals.transfer_failed.connect(failed, sender=app)
        signals.transfer_outcome.connect(outcome, sender=app)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def stats(records: t.Iterable[dict[str, t.Any]]) -> dict[str, t.Any]:
    """Transfer figures: counts by destination and platform, refusal and failure rates, the
    outcome mix and handler latency percentiles."""
    decisions: dict[tuple[str, str], str] = {}
    by_destination: collections.Counter[str] = collections.Counter()
    by_platform: collections.Counter[str] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    failures: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    for record in records:
        kind = record.get("kind")
        if kind == "outcome":
            outcomes[record.get("outcome", "unknown")] += 1
            continue
        if kind == "failed":
            failures[record.get("stage", "-")] += 1
            if record.get("stage") != "deliver":
                continue
        key = (record.get("platform", "-"), str(record.get("call_id")))
        decisions[key] = t.cast(str, kind)
        if kind == "resolved":
            by_destination[record.get("destination", "-")] += 1
            latencies.append(float(record.get("ms", 0.0)))
    for platform, _ in decisions:
        by_platform[platform] += 1
    total = len(decisions)
    kinds = collections.Counter(decisions.values())
    return {
        "requests": total,
        "transferred": kinds["resolved"],
        "refused": kinds["refused"],
        "failed_deliveries": kinds["failed"],
        "refusal_rate": kinds["refused"] / total if total else 0.0,
        "failure_rate": sum(failures.values()) / total if total else 0.0,
        "failures_by_stage": dict(failures),
        "by_destination": dict(by_destination.most_common()),
        "by_platform": dict(by_platform.most_common()),
        "outcomes": dict(outcomes.most_common()),
        "latency_ms": {
            "p50": _percentile(latencies, 0.5),
            "p90": _percentile(latencies, 0.9),
            "p99": _percentile(latencies, 0.99),
            "mean": statistics.fmean(latencies),
        }
        if latencies
        else {},
    }
