"""DestinationPool and BusinessHours."""

from __future__ import annotations

import datetime
import multiprocessing
import pathlib
import typing as t

import pytest

from flask_calltransfer import BusinessHours
from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationPool
from flask_calltransfer import NumberDestination
from flask_calltransfer.store import MemoryStore
from flask_calltransfer.store import SqliteStore
from tests.conftest import MakeApp
from tests.conftest import Vapi

UTC = datetime.UTC


def test_pool_takes_turns_through_the_apps_store(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.add_destination("anna", NumberDestination("+31207948450"))
    pool = DestinationPool("sales", ["anna", NumberDestination("+31207948451"), "+31 20 794 8452"])
    transfers.on_request(lambda call: pool.next())
    app, _ = make_app(transfers)
    vapi = Vapi(app.test_client())
    numbers = [vapi.ask().json["destination"]["number"] for _ in range(4)]
    assert numbers == ["+31207948450", "+31207948451", "+31207948452", "+31207948450"]


def _turns(path: str, count: int, queue: t.Any) -> None:
    pool = DestinationPool("agents", ["a", "b", "c"])
    store = SqliteStore(path)
    queue.put([pool.next(store) for _ in range(count)])


def test_pool_turns_are_shared_across_processes(tmp_path: pathlib.Path) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_turns, args=(str(tmp_path / "s.db"), 30, queue)) for _ in range(3)]
    for worker in workers:
        worker.start()
    picks = [pick for _ in workers for pick in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(picks) == ["a"] * 30 + ["b"] * 30 + ["c"] * 30  # 90 turns, evenly


def test_pool_validation() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DestinationPool("x", [])
    with pytest.raises(ValueError, match="needs a name"):
        DestinationPool("", ["a"])
    with pytest.raises(TypeError, match="destinations or strings"):
        DestinationPool("x", [42])  # type: ignore[list-item]
    assert DestinationPool("x", ["a", "b"]).next(MemoryStore()) == "a"


OFFICE = BusinessHours(
    {"mon-fri": ["08:00-12:30", "13:30-18:00"], "sat": "10:00-14:00", "sun": "closed"},
    timezone="Europe/Amsterdam",
    holidays=["2026-12-25", datetime.date(2026, 12, 26)],
)


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (datetime.datetime(2026, 11, 23, 7, 59, tzinfo=UTC), True),  # Monday 08:59 in Amsterdam
        (datetime.datetime(2026, 11, 23, 6, 59, tzinfo=UTC), False),  # 07:59
        (datetime.datetime(2026, 11, 23, 12, 0, tzinfo=UTC), False),  # lunch, 13:00
        (datetime.datetime(2026, 11, 23, 16, 59, tzinfo=UTC), True),  # 17:59
        (datetime.datetime(2026, 11, 23, 17, 0, tzinfo=UTC), False),  # 18:00, closed
        (datetime.datetime(2026, 7, 6, 15, 30, tzinfo=UTC), True),  # summer time: 17:30
        (datetime.datetime(2026, 7, 6, 16, 30, tzinfo=UTC), False),  # summer time: 18:30
        (datetime.datetime(2026, 11, 28, 9, 30, tzinfo=UTC), True),  # Saturday 10:30
        (datetime.datetime(2026, 11, 29, 11, 0, tzinfo=UTC), False),  # Sunday
        (datetime.datetime(2026, 12, 25, 10, 0, tzinfo=UTC), False),  # Christmas, a Friday
        (datetime.datetime(2026, 11, 23, 9, 0), True),  # naive: taken as UTC
    ],
)
def test_business_hours(moment: datetime.datetime, is_open: bool) -> None:
    assert OFFICE.is_open(moment) is is_open


def test_day_ranges_wrap_and_midnight() -> None:
    night = BusinessHours({"fri-mon": "20:00-24:00"}, timezone="UTC")
    assert night.is_open(datetime.datetime(2026, 11, 22, 23, 59, tzinfo=UTC))  # Sunday
    assert not night.is_open(datetime.datetime(2026, 11, 24, 21, 0, tzinfo=UTC))  # Tuesday


@pytest.mark.parametrize(
    ("schedule", "timezone", "match"),
    [
        ({"mon": "8-18"}, "UTC", "must look like"),
        ({"mon": "18:00-08:00"}, "UTC", "end after they start"),
        ({"mon": "08:00-25:00"}, "UTC", "does not exist"),
        ({"monday": "08:00-18:00"}, "UTC", "is not a day"),
        ({"mon-xyz": "08:00-18:00"}, "UTC", "day range"),
        ({"mon": "08:00-18:00"}, "Mars/Olympus", "not a timezone"),
    ],
)
def test_business_hours_validation(schedule: dict[str, str], timezone: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BusinessHours(schedule, timezone=timezone)


def test_business_hours_as_a_when_predicate(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    always = BusinessHours({"mon-sun": "00:00-24:00"}, timezone="UTC")
    never = BusinessHours({}, timezone="UTC")
    transfers.on_request(when=never)(lambda call: "+31687654321")
    transfers.on_request(when=always)(lambda call: "+31612345678")
    app, _ = make_app(transfers)
    assert Vapi(app.test_client()).ask().json["destination"]["number"] == "+31612345678"
