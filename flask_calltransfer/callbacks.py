"""Callbacks: "we will call you back" as a routing result, kept as one task per call.

A handler returns a :class:`Callback`, or a :class:`~flask_calltransfer.DestinationChain` holds one
for when every destination is full, closed or has failed. The caller is told when they will be
called back, in the platform's own "no transfer, say this" answer; one task per call is kept in the
store, once across workers and repeated deliveries, until someone completes it.
"""

from __future__ import annotations

import datetime
import json
import string
import time
import typing as t

from . import messages
from .exceptions import InvalidDestination
from .handoff import Handoff

if t.TYPE_CHECKING:
    from .store.base import Store


class Call(t.Protocol):
    """What a task is kept from: a :class:`~flask_calltransfer.TransferRequest` (a protocol, as
    the models import this module for chains' callbacks).

    :meta private:
    """

    @property
    def platform(self) -> str: ...
    @property
    def call_id(self) -> str | None: ...
    @property
    def caller(self) -> str | None: ...


class Hours(t.Protocol):
    """What a callback needs of its hours: :class:`~flask_calltransfer.BusinessHours` has it (a
    protocol, as the routing helpers build on the models, which hold chains and their callbacks).

    :meta private:
    """

    def next_open(self, at: datetime.datetime | None = None) -> datetime.datetime | None: ...

    def arguments(self) -> dict[str, t.Any]: ...


#: How long an open or claimed task is kept: a month. A completed one is kept a week more.
TASK_TTL: t.Final = 30 * 86400.0
DONE_TTL: t.Final = 7 * 86400.0
DEFAULT_MESSAGE: t.Final = "Nobody can take your call right now. We will call you back {when}."
#: What ``{when}`` says while the hours are open (or when there are none).
SOON: t.Final = "as soon as someone is free"
STATUSES: t.Final = ("open", "claimed", "done")

_COUNTER = "callbacks:n"
_TASK = "callbacks:task:"
_CALL = "callbacks:call:"


class Callback:
    """A callback offer: the caller is told they will be called back, and a task is kept.

    .. code-block:: python

        from flask_calltransfer import BusinessHours, Callback, DestinationChain

        office = BusinessHours({"mon-fri": "09:00-17:00"}, timezone="Europe/Amsterdam")

        @transfers.on_request
        def route(call):
            return DestinationChain(
                ["+31207948451", "+31207948452"],
                callback=Callback(reason="Billing question", hours=office),
            )

    :param message: what the caller hears; ``{when}`` becomes when they will be called back:
        ``"as soon as someone is free"`` while ``hours`` are open (or without hours), else the next
        opening, such as ``"tomorrow at 09:00"``. At most 1000 characters.
    :param reason: why the caller wants a call back, for whoever takes the task (one line, at
        most 200 characters).
    :param hours: the :class:`~flask_calltransfer.BusinessHours` callbacks are made in.
    :param handoff: a :class:`~flask_calltransfer.Handoff` kept with the task (sensitive values
        too: the task is for your staff).
    :raises InvalidDestination: for a message with another placeholder, or a value too long.

    .. versionadded:: 0.1
    """

    __slots__ = ("message", "reason", "hours", "handoff")

    message: str
    reason: str | None
    hours: Hours | None
    handoff: Handoff | None

    def __init__(
        self,
        message: str | None = None,
        *,
        reason: str | None = None,
        hours: Hours | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        message = DEFAULT_MESSAGE if message is None else message
        if not isinstance(message, str) or not message.strip() or len(message) > 1000:
            raise InvalidDestination(messages.callback_message_invalid())
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(message) if name is not None}
        except ValueError:
            raise InvalidDestination(messages.callback_message_placeholder()) from None
        if names - {"when"}:
            raise InvalidDestination(messages.callback_message_placeholder())
        if reason is not None and (
            not isinstance(reason, str) or not reason.strip() or len(reason) > 200 or "\n" in reason
        ):
            raise InvalidDestination(messages.callback_reason_invalid())
        if hours is not None and not callable(getattr(hours, "next_open", None)):
            raise InvalidDestination(messages.callback_hours_invalid(hours))
        if handoff is not None and not isinstance(handoff, Handoff):
            raise InvalidDestination(messages.handoff_not_handoff(handoff))
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "hours", hours)
        object.__setattr__(self, "handoff", handoff)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"A Callback cannot be changed; build a new one instead of setting {name}.")

    def __repr__(self) -> str:
        return f"<Callback{' in ' + repr(self.hours) if self.hours is not None else ''}>"

    def arguments(self) -> dict[str, t.Any]:
        """What builds this offer again, as JSON: a chain's callback is kept in the store between
        a call's attempts.

        :meta private:
        """
        return {
            "message": self.message,
            "reason": self.reason,
            "hours": self.hours.arguments() if self.hours is not None else None,
            "handoff": self.handoff.arguments() if self.handoff is not None else None,
        }

    def slot(self, now: datetime.datetime) -> datetime.datetime | None:
        """When the caller will be called back: ``None`` for as soon as someone is free."""
        if self.hours is None:
            return None
        opening = self.hours.next_open(now)
        return None if opening is None or opening <= now else opening

    def words(self, now: datetime.datetime) -> str:
        """The message, ``{when}`` filled in."""
        slot = self.slot(now)
        return self.message.format(when=SOON if slot is None else when(slot, now))


def when(slot: datetime.datetime, now: datetime.datetime) -> str:
    """``slot`` as the caller hears it, in its own timezone: ``"today at 14:00"``, ``"tomorrow at
    09:00"``, ``"on Monday at 09:00"`` within a week, else ``"on 5 January at 09:00"``."""
    local_now = now.astimezone(slot.tzinfo)
    days = (slot.date() - local_now.date()).days
    clock = slot.strftime("%H:%M")
    if days == 0:
        return f"today at {clock}"
    if days == 1:
        return f"tomorrow at {clock}"
    if days < 7:
        return f"on {slot.strftime('%A')} at {clock}"
    return f"on {slot.day} {slot.strftime('%B')} at {clock}"


class CallbackBook:
    """The callback tasks of one app, in its store.

    Tasks are numbered from 1 (``callbacks:n``) and each is one JSON value, so every backend
    lists, claims and completes them the same way. A claim is one atomic increment: of any number
    of people claiming one task at once, exactly one gets it.

    .. versionadded:: 0.1
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def request(
        self, call: Call, offer: Callback, now: datetime.datetime
    ) -> tuple[dict[str, t.Any] | None, bool]:
        """Keep a task for ``call`` unless it has one: ``(task, new)``. A repeated delivery, on
        any worker, gets ``(the first task or None while it is being written, False)``.

        :raises StoreUnavailable: if the store cannot keep it.
        """
        store = self._store
        if call.call_id:
            key = f"{_CALL}{call.platform}:{call.call_id}"
            if store.incr(key, ttl=TASK_TTL) != 1:
                first = store.get(key + ":task")
                return (self.get(int(first)) if first and first.isdigit() else None), False
        else:
            key = None
        number = store.incr(_COUNTER)
        slot = offer.slot(now)
        task: dict[str, t.Any] = {
            "id": number,
            "platform": call.platform,
            "call_id": call.call_id,
            "caller": call.caller,
            "reason": offer.reason,
            "handoff": offer.handoff.context() if offer.handoff is not None else None,
            "slot": slot.isoformat() if slot is not None else None,
            "requested_at": now.timestamp(),
            "status": "open",
            "claimed_by": None,
            "claimed_at": None,
            "done_at": None,
        }
        store.set(f"{_TASK}{number}", json.dumps(task), ttl=TASK_TTL)
        if key is not None:
            store.set(key + ":task", str(number), ttl=TASK_TTL)
        return task, True

    def get(self, number: int) -> dict[str, t.Any] | None:
        """Task ``number``, or ``None`` if there is none (or it expired)."""
        kept = self._store.get(f"{_TASK}{number}")
        if kept is None:
            return None
        try:
            task = json.loads(kept)
        except ValueError:
            return None
        return task if isinstance(task, dict) else None

    def tasks(self, status: str | None = None) -> list[dict[str, t.Any]]:
        """Every task kept, oldest first; only those with ``status`` when given."""
        count = self._store.get(_COUNTER)
        found = []
        for number in range(1, int(count) + 1 if count and count.isdigit() else 1):
            task = self.get(number)
            if task is not None and (status is None or task.get("status") == status):
                found.append(task)
        return found

    def claim(self, number: int, by: str) -> dict[str, t.Any] | None:
        """Claim task ``number`` for ``by``; the task if this claim won, else ``None`` (someone
        claimed it first, it is done, or there is no such task)."""
        task = self.get(number)
        if task is None or task.get("status") != "open":
            return None
        if self._store.incr(f"{_TASK}{number}:claim", ttl=TASK_TTL) != 1:
            return None
        task.update(status="claimed", claimed_by=by, claimed_at=time.time())
        self._store.set(f"{_TASK}{number}", json.dumps(task), ttl=TASK_TTL)
        return task

    def complete(self, number: int, by: str | None = None) -> dict[str, t.Any] | None:
        """Mark task ``number`` done; the task, or ``None`` if there is none or it was done."""
        task = self.get(number)
        if task is None or task.get("status") == "done":
            return None
        # No later claim may take it.
        self._store.incr(f"{_TASK}{number}:claim", ttl=DONE_TTL)
        task.update(status="done", done_at=time.time())
        if by is not None and task.get("claimed_by") is None:
            task["claimed_by"] = by
        self._store.set(f"{_TASK}{number}", json.dumps(task), ttl=DONE_TTL)
        return task
