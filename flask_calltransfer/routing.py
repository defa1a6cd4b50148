"""Routing helpers for handlers: round-robin pools and business hours."""

from __future__ import annotations

import datetime
import itertools
import re
import typing as t
import zoneinfo

from flask import current_app

from . import messages
from .exceptions import StoreUnavailable
from .logs import logger
from .models import Destination

if t.TYPE_CHECKING:
    from .store import Store

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class DestinationPool:
    """Round-robin across several destinations, shared by every worker through the app's store.

    .. code-block:: python

        sales_desk = DestinationPool("sales", ["sales-anna", "sales-bram", "+31207948453"])

        @transfers.on_request
        def route(call):
            if "quote" in call.text:
                return sales_desk.next()

    :param name: names the pool's counter in the store; pools with the same name share turns.
    :param destinations: destination objects, directory names or number and SIP strings, in turn
        order; names are resolved when chosen, like a handler's string answers.

    .. versionadded:: 0.1
    """

    def __init__(self, name: str, destinations: t.Sequence[Destination | str]) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("A DestinationPool needs a name, such as 'sales'.")
        if not destinations:
            raise ValueError(f"The DestinationPool {name!r} needs at least one destination.")
        for destination in destinations:
            if not isinstance(destination, (Destination, str)):
                kind = type(destination).__name__
                raise TypeError(f"The DestinationPool {name!r} takes destinations or strings, not {kind}.")
        self.name = name
        self.destinations = tuple(destinations)
        self._local_turns = itertools.count()

    def next(self, store: Store | None = None) -> Destination | str:
        """The next destination in turn. Handlers may return it as is.

        While the store is unavailable, turns are taken in this process alone: callers are still
        spread over the pool, only not in one order shared by every worker.

        :param store: the store holding the turn; defaults to the current app's.
        """
        if store is None:
            store = current_app.extensions["calltransfer"].services.store
        try:
            turn = store.incr(f"pool:{self.name}") - 1
        except StoreUnavailable as exc:
            logger.warning(messages.pool_turn_local(self.name, str(exc)))
            turn = next(self._local_turns)
        return self.destinations[turn % len(self.destinations)]

    def __repr__(self) -> str:
        return f"<DestinationPool {self.name!r} of {len(self.destinations)}>"


def _parse_ranges(day: str, value: str | t.Iterable[str]) -> tuple[tuple[datetime.time, datetime.time], ...]:
    texts = [value] if isinstance(value, str) else list(value)
    ranges = []
    for text in texts:
        if text.strip().lower() == "closed":
            continue
        match = _RANGE.match(text.strip())
        if match is None:
            raise ValueError(f"Opening hours for {day!r} must look like '08:00-18:00', not {text!r}.")
        start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
        try:
            start = datetime.time(start_h, start_m)
            end = datetime.time(0, 0) if (end_h, end_m) == (24, 0) else datetime.time(end_h, end_m)
        except ValueError:
            raise ValueError(
                f"Opening hours for {day!r} hold a time that does not exist: {text!r}."
            ) from None
        if end != datetime.time(0, 0) and end <= start:
            raise ValueError(f"Opening hours for {day!r} must end after they start: {text!r}.")
        ranges.append((start, end))
    return tuple(ranges)


def _days(key: str) -> list[str]:
    key = key.strip().lower()
    if "-" in key:
        first, _, last = key.partition("-")
        if first not in _DAYS or last not in _DAYS:
            raise ValueError(f"{key!r} is not a day range such as 'mon-fri'.")
        start, end = _DAYS.index(first), _DAYS.index(last)
        return list(_DAYS[start : end + 1]) if start <= end else list(_DAYS[start:] + _DAYS[: end + 1])
    if key not in _DAYS:
        raise ValueError(
            f"{key!r} is not a day: use mon, tue, wed, thu, fri, sat, sun or a range like 'mon-fri'."
        )
    return [key]


class BusinessHours:
    """A weekly schedule in a timezone, with holidays. Usable as a ``when=`` predicate.

    .. code-block:: python

        office = BusinessHours(
            {"mon-fri": "08:00-18:00", "sat": "10:00-14:00"},
            timezone="Europe/Amsterdam",
            holidays=["2026-12-25", "2026-12-26"],
        )

        @transfers.on_request(when=office)
        def in_office_hours(call): ...

    :param schedule: day or day range (``"mon-fri"``) to ``"HH:MM-HH:MM"``, a list of such ranges,
        or ``"closed"``; ``"24:00"`` ends a range at midnight. Days not named are closed.
    :param timezone: an IANA timezone name, such as ``"Europe/Amsterdam"``.
    :param holidays: dates (``datetime.date`` or ``"YYYY-MM-DD"``) that are closed all day.
    :raises ValueError: for a day, range, timezone or date that cannot be read.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        schedule: t.Mapping[str, str | t.Iterable[str]],
        *,
        timezone: str,
        holidays: t.Iterable[datetime.date | str] = (),
    ) -> None:
        try:
            self.timezone = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{timezone!r} is not a timezone; use an IANA name such as 'Europe/Amsterdam'."
            ) from None
        self.hours: dict[str, tuple[tuple[datetime.time, datetime.time], ...]] = dict.fromkeys(_DAYS, ())
        for key, value in schedule.items():
            for day in _days(key):
                self.hours[day] = _parse_ranges(day, value)
        self.holidays = frozenset(
            day if isinstance(day, datetime.date) else datetime.date.fromisoformat(day) for day in holidays
        )

    def is_open(self, at: datetime.datetime | None = None) -> bool:
        """Whether it is within opening hours at ``at`` (default: now); naive times count as UTC."""
        moment = at or datetime.datetime.now(tz=datetime.UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        local = moment.astimezone(self.timezone)
        if local.date() in self.holidays:
            return False
        now = local.time()
        for start, end in self.hours[_DAYS[local.weekday()]]:
            if start <= now and (end == datetime.time(0, 0) or now < end):
                return True
        return False

    def arguments(self) -> dict[str, t.Any]:
        """What builds this schedule again (``BusinessHours(**hours.arguments())``), as JSON: a
        chain's callback is kept in the store between a call's attempts.

        :meta private:
        """

        def text(start: datetime.time, end: datetime.time) -> str:
            close = "24:00" if end == datetime.time(0, 0) else end.strftime("%H:%M")
            return f"{start.strftime('%H:%M')}-{close}"

        return {
            "schedule": {day: [text(*span) for span in spans] for day, spans in self.hours.items() if spans},
            "timezone": self.timezone.key,
            "holidays": sorted(day.isoformat() for day in self.holidays),
        }

    def next_open(self, at: datetime.datetime | None = None) -> datetime.datetime | None:
        """``at`` (default: now) when it is within opening hours, else when they next open, in the
        schedule's timezone; ``None`` if they do not open within the next 366 days.

        .. versionadded:: 0.1
        """
        moment = at or datetime.datetime.now(tz=datetime.UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        if self.is_open(moment):
            return moment.astimezone(self.timezone)
        local = moment.astimezone(self.timezone)
        for offset in range(367):
            day = local.date() + datetime.timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, _ in sorted(self.hours[_DAYS[day.weekday()]]):
                opening = datetime.datetime.combine(day, start, tzinfo=self.timezone)
                if opening > local:
                    return opening
        return None

    def __call__(self, call: object = None) -> bool:
        return self.is_open()

    def __repr__(self) -> str:
        return f"<BusinessHours {self.timezone.key}>"
