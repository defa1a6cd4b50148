"""Failover and availability: destinations tried in order for one call, the call's attempts kept
in the store, capacity counted in slots, and the app's own availability checks.

A handler answers with a :class:`DestinationChain`; the extension sends the first destination
that is available and not yet tried on this call, and keeps the attempt in the store, so every
worker and machine sees it. When the platform reports that the attempt failed, the next one is
tried the way the platform allows (see :attr:`Platform.failover
<flask_calltransfer.Platform.failover>`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import typing as t

from . import messages
from .callbacks import Callback
from .exceptions import InvalidDestination
from .exceptions import StoreUnavailable
from .handlers import Line
from .handlers import name_of
from .handoff import Handoff
from .logs import logger
from .models import Attempt
from .models import Destination
from .models import DestinationChain
from .models import NumberDestination
from .models import SipDestination
from .models import TransferRequest
from .routing import BusinessHours
from .store.base import bookkeeping

if t.TYPE_CHECKING:
    from .handlers import Registry
    from .platforms.base import Platform
    from .store import Store

#: How long a call's attempts, and the chain it is working through, are kept.
ATTEMPTS_TTL = 6 * 3600.0
#: A slot is given back this long before it expires at the latest, so a slot that another call
#: may hold by now is never given back on its behalf.
_SLOT_MARGIN = 5.0
#: The most attempts of one call that are read: a chain holds at most this many destinations.
MAX_ATTEMPTS = 20
#: How long a transfer sent through an API or a dial may ring before its silence counts as a
#: failure: until then a new request for the call is told that a transfer is under way.
RING_WINDOW = 90.0
#: The outcomes that say the destination never took the call, so its place is free again.
NOT_TAKEN = frozenset({"busy", "no-answer", "voicemail", "failed", "cancelled"})
#: Stands for the call's own caller in a chain kept for later attempts: the store never holds it.
_CALLER = "\u0000caller"


class RepeatedNews(Exception):
    """The event that reports an outcome was heard before: a retry, or a delivery to another
    worker.

    :meta private:
    """


class Choice(t.NamedTuple):
    """A destination picked for a call, and what the store must know of it.

    :meta private:
    """

    destination: Destination
    key: str
    label: str
    #: The capacity slot it holds, if its directory entry has ``max_concurrent``.
    slot: int | None
    #: Whether the attempt is kept (chains, and destinations holding a slot).
    tracked: bool


#: Runs one availability check within what is left of the deadline: ``(func, what) -> bool``,
#: ``what`` naming the check and the destination for log lines.
CheckRunner = t.Callable[[t.Callable[[], bool], str], bool]
#: Told of every destination passed over: ``(destination, reason)``.
SkipListener = t.Callable[[Destination, str], None]


def entry_key(destination: Destination) -> str:
    """How a chain entry is known among a call's attempts: its directory name, else a digest of
    everything it is (one-way: no number can be read back from it)."""
    if destination.directory_name:
        return destination.directory_name
    fields = dataclasses.fields(destination)  # type: ignore[arg-type]
    values = [(field.name, getattr(destination, field.name)) for field in fields]
    return "d:" + hashlib.sha256(f"{type(destination).__name__}:{values!r}".encode()).hexdigest()[:16]


def _label(destination: Destination) -> str:
    return destination.directory_name or destination.describe()


def _encode(destination: Destination) -> dict[str, t.Any] | None:
    """A destination as JSON the store can keep for a later attempt, or ``None`` if it carries
    what this simple form does not (a transfer plan, an assistant)."""
    if destination.directory_name:
        return {"name": destination.directory_name}
    if isinstance(destination, NumberDestination) and destination.transfer_plan is None:
        fields = ("message", "caller_id", "caller_id_name", "extension", "description")
        found = {
            field: getattr(destination, field) for field in fields if getattr(destination, field) is not None
        }
        return {"number": destination.number, "e164": destination.e164, **found, **_handoff_of(destination)}
    if isinstance(destination, SipDestination) and destination.transfer_plan is None:
        found = {field: getattr(destination, field) for field in ("message", "caller_id", "description")}
        headers = dict(destination.headers) if destination.headers else None
        return {
            "sip": destination.uri,
            "headers": headers,
            **{k: v for k, v in found.items() if v is not None},
            **_handoff_of(destination),
        }
    return None


def _handoff_of(destination: Destination) -> dict[str, t.Any]:
    handoff = destination.handoff
    return {} if handoff is None else {"handoff": handoff.arguments()}


def _decode(record: object, directory: t.Mapping[str, Destination]) -> Destination | None:
    if not isinstance(record, dict):
        return None
    try:
        if "name" in record:
            return directory.get(record["name"])
        if isinstance(record.get("handoff"), dict):
            record = {**record, "handoff": Handoff(**record["handoff"])}
        if "number" in record:
            fields = {k: v for k, v in record.items() if k not in ("number", "e164")}
            return NumberDestination(record["number"], e164=bool(record.get("e164", True)), **fields)
        if "sip" in record:
            fields = {k: v for k, v in record.items() if k not in ("sip",)}
            return SipDestination(record["sip"], **fields)
    except (InvalidDestination, TypeError, ValueError):
        return None
    return None


def _callback(data: t.Mapping[str, t.Any]) -> Callback:
    """The offer :meth:`Callback.arguments` described; raises ValueError or TypeError for data
    that builds none."""
    hours, handoff = data.get("hours"), data.get("handoff")
    return Callback(
        data.get("message"),
        reason=data.get("reason"),
        hours=BusinessHours(**hours) if isinstance(hours, dict) else None,
        handoff=Handoff(**handoff) if isinstance(handoff, dict) else None,
    )


def _entry(entry: Destination | str) -> t.Any:
    return entry if isinstance(entry, str) else _encode(entry)


def _swapped(entry: dict[str, t.Any], old: str, new: str) -> dict[str, t.Any]:
    """``entry`` with ``old`` as its caller ID or number replaced by ``new``, and inside its SIP
    header values: the places a caller's own number is given to the person answering."""
    found = dict(entry)
    for field in ("caller_id", "number"):
        if found.get(field) == old:
            found[field] = new
    headers = found.get("headers")
    if isinstance(headers, dict):
        found["headers"] = {name: str(value).replace(old, new) for name, value in headers.items()}
    return found


def _without_caller(entry: t.Any, caller: str | None) -> t.Any:
    """An encoded entry with the caller's own number replaced by a placeholder."""
    if not caller or not isinstance(entry, dict):
        return entry
    return _swapped(entry, caller, _CALLER)


def _with_caller(entry: t.Any, caller: str | None) -> t.Any:
    """An entry kept by :func:`_without_caller` with the caller's number put back; ``None`` when
    it needs the number and the event did not give it."""
    if not isinstance(entry, dict):
        return entry
    headers = entry.get("headers")
    values = [
        entry.get("caller_id"),
        entry.get("number"),
        *(headers.values() if isinstance(headers, dict) else ()),
    ]
    if not any(isinstance(value, str) and _CALLER in value for value in values):
        return entry
    if not caller:
        return None
    return _swapped(entry, _CALLER, caller)


def _json(text: str | None) -> t.Any:
    """A value kept in the store, or ``None`` for one that is missing or not ours (not JSON)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class Failover:
    """One app's failover bookkeeping in its store.

    :meta private:
    """

    def __init__(self, store: Store, registry: Registry, *, hold: float) -> None:
        self.store = store
        self.registry = registry
        #: Seconds a capacity slot is held at most, when no outcome gives it back sooner.
        self.hold = hold

    # Attempts --------------------------------------------------------------------------------

    @staticmethod
    def key(platform: str, call_id: str) -> str:
        """Where a call's attempts are kept in the store; other keys of the call start with it."""
        return f"attempts:{platform}:{call_id}"

    def _records(self, platform: str, call_id: str) -> list[dict[str, t.Any]]:
        base = self.key(platform, call_id)
        try:
            count = int(self.store.get(base + ":n") or 0)
        except ValueError:
            count = 0
        found = []
        # The latest ones only, whatever the counter says: a call never needs more.
        for number in range(max(1, count - MAX_ATTEMPTS + 1), count + 1):
            record = _json(self.store.get(f"{base}:{number}"))
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                if not isinstance(record.get("at"), (int, float)):
                    record["at"] = 0.0
                record["number"] = number
                found.append(record)
        return found

    def records(self, platform: str, call_id: str | None) -> list[dict[str, t.Any]]:
        """The call's attempts as kept, oldest first; ``[]`` when there are none or the store is
        down (the call is then routed as a first attempt)."""
        if not call_id:
            return []
        try:
            return self._records(platform, call_id)
        except StoreUnavailable as exc:
            logger.warning(messages.attempts_not_read(platform, call_id, str(exc)))
            return []

    def attempts(self, platform: str, call_id: str | None) -> tuple[Attempt, ...]:
        """The call's attempts, oldest first; ``()`` when there are none or the store is down."""
        return tuple(_attempt(record) for record in self.records(platform, call_id))

    def seen_by(self, call: TransferRequest, platform: Platform | None) -> tuple[Attempt, ...]:
        """The call's attempts as its handlers see them: on a platform that asks again after a
        failed transfer (``"request"`` failover), a request for a call whose latest attempt waits
        for its outcome says that attempt failed."""
        found = self.attempts(call.platform, call.call_id)
        if found and found[-1].outcome is None and platform is not None and platform.failover == "request":
            outcome, detail = asked_again(call, platform, found[-1].number)
            found = (*found[:-1], found[-1]._replace(outcome=outcome, detail=detail))
        return found

    def record(
        self, call: TransferRequest, choice: Choice, chain: DestinationChain | None, *, keep_chain: bool
    ) -> Attempt | None:
        """Keep a new attempt of ``call`` (and, with ``keep_chain``, the chain's entries for the
        worker that hears how it went). ``None`` if the store is down: the transfer still goes
        ahead."""
        if not call.call_id:
            return None
        base = self.key(call.platform, call.call_id)
        now = time.time()
        record: dict[str, t.Any] = {
            "key": choice.key,
            "label": choice.label,
            "outcome": None,
            "detail": None,
            "at": now,
            "slot": choice.slot,
            # When the place expires by itself, as claimed: a later deploy's hold may differ.
            "slot_until": now + self.hold if choice.slot is not None else None,
        }
        with bookkeeping("keeping a transfer attempt"):
            number = self.store.incr(base + ":n", ttl=ATTEMPTS_TTL)
            self.store.set(f"{base}:{number}", json.dumps(record), ttl=ATTEMPTS_TTL)
            if chain is not None and keep_chain:
                # The caller's own number (a caller ID shown to the person answering) is put back
                # from the event that asks for the next attempt: the store never holds it.
                entries = [_without_caller(_entry(entry), call.caller) for entry in chain.destinations]
                offer = chain.callback.arguments() if chain.callback is not None else None
                kept = json.dumps(
                    {"name": chain.name, "message": chain.message, "entries": entries, "callback": offer}
                )
                self.store.set(base + ":chain", kept, ttl=ATTEMPTS_TTL)
            record["number"] = number
            return _attempt(record)
        return None

    def chain(self, call: TransferRequest) -> DestinationChain | None:
        """The chain the call's first attempt came from, rebuilt from the store; entries that no
        longer build (a name gone from the directory, the caller's number unknown) are left out."""
        data = _json(self.store.get(self.key(call.platform, t.cast(str, call.call_id)) + ":chain"))
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            return None
        entries: list[Destination | str] = []
        for entry in data["entries"][:MAX_ATTEMPTS]:
            if isinstance(entry, str):
                entries.append(entry)
            else:
                decoded = _decode(_with_caller(entry, call.caller), self.registry.directory)
                if decoded is not None:
                    entries.append(decoded)
        if not entries:
            return None
        offer = None
        if isinstance(data.get("callback"), dict):
            try:
                offer = _callback(data["callback"])
            except (TypeError, ValueError):
                # A callback that no longer builds: the chain still ends as one without it.
                offer = None
        try:
            return DestinationChain(
                entries, name=data.get("name") or None, message=data.get("message"), callback=offer
            )
        except (TypeError, ValueError):
            return None

    def settle(
        self,
        platform: str,
        call_id: str,
        outcome: str,
        detail: str | None,
        *,
        news: bytes | None = None,
        call_over: bool = False,
        about: int | None = None,
        records: list[dict[str, t.Any]] | None = None,
    ) -> Attempt | None:
        """Give the call's latest attempt its outcome, once across every worker, and give back its
        capacity slot when the destination never took the call. ``None`` when there is no attempt
        waiting for one, the news is about an earlier attempt, or another delivery of the same
        news settled it first.

        :param news: the raw body of the event that tells; the same body delivered again (a
            retry, or to another worker) settles nothing, even once a later attempt waits, and
            raises :class:`RepeatedNews`.
        :param call_over: a connected outcome that says the transferred call ended, so its place
            is free again too.
        :param about: the number of the attempt the platform says the news is about, when it says.
        :param records: the call's attempts, when the caller read them a moment ago.
        """
        if records is None:
            records = self._records(platform, call_id)
        if not records or records[-1]["outcome"] is not None:
            if news is not None and records and self.store.get(self.news_key(platform, call_id, news)):
                # Settled a moment ago by this very news, delivered first to another worker.
                raise RepeatedNews
            return None
        latest = records[-1]
        number = latest["number"]
        if about is not None and about < number:
            # How an earlier transfer went, told late: the one ringing now is another.
            return None
        base = self.key(platform, call_id)
        news_key = self.news_key(platform, call_id, news) if news is not None else None
        if news_key is not None and self.store.incr(news_key, ttl=ATTEMPTS_TTL) != 1:
            raise RepeatedNews
        try:
            if self.store.incr(f"{base}:{number}:settled", ttl=ATTEMPTS_TTL) != 1:
                return None
            latest.update(outcome=outcome, detail=detail)
            kept = {key: value for key, value in latest.items() if key != "number"}
            self.store.set(f"{base}:{number}", json.dumps(kept), ttl=ATTEMPTS_TTL)
        except StoreUnavailable:
            # Heard but not kept: the same news delivered again must be heard again.
            if news is not None:
                self.forget(platform, call_id, news)
            raise
        if outcome in NOT_TAKEN or call_over:
            self.release(latest)
        return _attempt(latest)

    def forget(self, platform: str, call_id: str, news: bytes) -> None:
        """Forget that an event was heard, so that the platform's retry of it is heard again."""
        # Worth a try right after a failure: otherwise the retry is lost.
        with bookkeeping("forgetting news that was not kept"), self.store.trying():
            self.store.delete(self.news_key(platform, call_id, news))

    def news_key(self, platform: str, call_id: str, news: bytes) -> str:
        """The store key that marks an event's body as heard, for the call."""
        return f"{self.key(platform, call_id)}:news:{hashlib.sha256(news).hexdigest()}"

    def keep_reply(self, platform: str, call_id: str, news: bytes, body: str, mimetype: str | None) -> None:
        """Keep the answer that carried the next destination, for the same event delivered again."""
        with bookkeeping("keeping a failover answer"):
            kept = json.dumps({"body": body, "mimetype": mimetype})
            self.store.set(self.news_key(platform, call_id, news) + ":reply", kept, ttl=ATTEMPTS_TTL)

    def kept_reply(
        self, platform: str, call_id: str, news: bytes, wait: float
    ) -> tuple[str, str | None] | None:
        """The answer kept for an event delivered before, waiting up to ``wait`` seconds for the
        first delivery to keep it."""
        key = self.news_key(platform, call_id, news) + ":reply"
        deadline = time.monotonic() + wait
        while True:
            try:
                data = _json(self.store.get(key))
            except StoreUnavailable:
                return None
            if isinstance(data, dict) and isinstance(data.get("body"), str):
                return data["body"], data.get("mimetype")
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def release(self, record: t.Mapping[str, t.Any]) -> None:
        """Give back an attempt's capacity slot, while it is surely still the attempt's."""
        slot, name, until = record.get("slot"), record.get("key"), record.get("slot_until")
        if type(slot) is not int or not isinstance(name, str) or not isinstance(until, (int, float)):
            return
        if time.time() < until - _SLOT_MARGIN:
            with bookkeeping("giving back a capacity slot"):
                self.store.delete(_slot_key(name, slot))

    # Choosing --------------------------------------------------------------------------------

    def choose(
        self,
        call: TransferRequest,
        answer: DestinationChain | Destination | str,
        *,
        coerce: t.Callable[[Destination | str], Destination],
        check: CheckRunner,
        skipped: SkipListener,
        tried: t.Collection[str] = (),
    ) -> Choice | None:
        """The first destination of ``answer`` that is free to take ``call``, holding its capacity
        slot; ``None`` if every one is unavailable, full, not a destination, or (for a chain) one
        of the keys ``tried`` on this call."""
        chain: DestinationChain | None = None
        entries: tuple[Destination | str, ...]
        if isinstance(answer, DestinationChain):
            chain, entries = answer, answer.destinations
        else:
            entries = (answer,)
        for entry in entries:
            try:
                destination = coerce(entry)
            except InvalidDestination as exc:
                if chain is None:
                    raise
                # A typo in one entry must not keep the caller from the others.
                logger.error(messages.chain_entry_skipped(exc, repr(call)))
                continue
            key = entry_key(destination)
            if chain is not None and key in tried:
                continue
            line = self.registry.lines.get(destination.directory_name or "")
            if not self._available(destination, line, call, check):
                skipped(destination, "unavailable")
                continue
            slot = None
            if line is not None and line.max_concurrent is not None:
                slot = self._claim_slot(key, line.max_concurrent)
                if slot is False:
                    skipped(destination, "full")
                    continue
            # True: the store could not count, and the call goes ahead without a place.
            held = slot if type(slot) is int else None
            return Choice(destination, key, _label(destination), held, chain is not None or held is not None)
        return None

    def _available(
        self, destination: Destination, line: Line | None, call: TransferRequest, check: CheckRunner
    ) -> bool:
        predicates: list[tuple[t.Callable[[], bool], str]] = []
        described = destination.describe()
        if line is not None and line.available is not None:
            available = line.available
            predicates.append(
                (lambda: bool(available(call)), f"{described} (available={name_of(available)})")
            )
        app_check = self.registry.availability
        if app_check is not None:
            predicates.append(
                (lambda: bool(app_check(destination, call)), f"{described} ({name_of(app_check)})")
            )
        return all(check(predicate, what) for predicate, what in predicates)

    def _claim_slot(self, key: str, limit: int) -> int | bool:
        """The number of a free slot, now held; ``False`` if all ``limit`` are held; ``True`` when
        the store cannot say (the call goes ahead: a full line beats a dropped caller)."""
        try:
            for slot in range(1, limit + 1):
                if self.store.incr(_slot_key(key, slot), ttl=self.hold) == 1:
                    return slot
        except StoreUnavailable as exc:
            logger.warning(messages.capacity_not_counted(key, str(exc)))
            return True
        return False


def asked_again(call: TransferRequest, platform: Platform, number: int) -> tuple[str, str]:
    """How attempt ``number``, the latest of a call that is asked for again, ended: what the
    request says of it, else failed (the platform would not ask again otherwise)."""
    earlier = platform.earlier_outcome(call)
    if earlier is not None and (earlier.attempt is None or earlier.attempt >= number):
        return earlier.outcome, earlier.detail
    return "failed", "asked again"


def _slot_key(name: str, slot: int) -> str:
    return f"capacity:{name}:{slot}"


def _attempt(record: t.Mapping[str, t.Any]) -> Attempt:
    return Attempt(
        number=int(record["number"]),
        destination=str(record.get("label") or record.get("key") or "-"),
        outcome=record.get("outcome"),
        detail=record.get("detail"),
        at=float(record.get("at", 0.0)),
    )
