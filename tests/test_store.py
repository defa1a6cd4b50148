"""The store contract, run against every backend, and SQLite's atomicity across processes."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import time
import typing as t

import pytest
from flask import Flask
from sqlalchemy import text as sa_text

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import NumberDestination
from flask_calltransfer.store import MemoryStore
from flask_calltransfer.store import SqliteStore
from flask_calltransfer.store import Store
from flask_calltransfer.store import from_url
from flask_calltransfer.store.postgres import PostgresStore
from flask_calltransfer.store.postgres import create_tables
from flask_calltransfer.store.redis import RedisStore
from tests.servers import postgres_server
from tests.servers import redis_cluster
from tests.servers import redis_sentinels
from tests.servers import redis_server


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_url() -> t.Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def redis_cluster_url() -> t.Iterator[str]:
    with redis_cluster() as (url, _):
        yield url


@pytest.fixture(scope="module")
def redis_sentinel_url() -> t.Iterator[str]:
    with redis_sentinels() as sentinels:
        yield sentinels.url


@pytest.fixture(scope="module")
def postgres_url() -> t.Iterator[str]:
    with postgres_server() as url:
        store = PostgresStore.from_url(url)
        create_tables(store.engine)
        store.close()
        yield url


def _engine(url: str, **options: t.Any) -> t.Any:
    import sqlalchemy as sa

    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), **options)


def _empty_postgres(url: str) -> PostgresStore:
    store = PostgresStore.from_url(url)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM calltransfer_kv")
        connection.exec_driver_sql("DELETE FROM calltransfer_counts")
    return store


class RedisClock(Clock):
    """Redis and PostgreSQL keep time themselves: moving this clock waits instead, so expiries are
    tested for real."""

    def __init__(self, scale: float) -> None:
        self._now = 0.0
        self.scale = scale

    @property  # type: ignore[override]
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        time.sleep(max(0.0, value - self._now) * self.scale)
        self._now = value


#: Expiries on a server's clock are scaled down in the tests, so waiting for them stays short.
#: PostgreSQL gets more room: each operation is a transaction of a few round trips, and a tenth
#: of a test second (the tests' smallest margin) must stay longer than one under load.
REDIS_TIME_SCALE = 0.05
POSTGRES_TIME_SCALE = 0.25


class FiveMethods(Store):
    """A store with only the five required methods, as a custom backend would have: counters come
    from the base class's defaults."""

    def __init__(self, clock: Clock) -> None:
        self.memory = MemoryStore(clock=clock)

    def get(self, key: str) -> str | None:
        return self.memory.get(key)

    def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        self.memory.set(key, value, ttl=ttl)

    def delete(self, key: str) -> None:
        self.memory.delete(key)

    def pop(self, key: str) -> str | None:
        return self.memory.pop(key)

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self.memory.incr(key, amount, ttl=ttl)


@pytest.fixture(
    params=["memory", "sqlite", "redis", "redis-cluster", "redis-sentinel", "postgres", "five-methods"]
)
def backend(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> tuple[Store, Clock]:
    clock: Clock
    store: Store
    if request.param == "five-methods":
        clock = Clock()
        store = FiveMethods(clock)
    elif request.param in ("redis", "redis-cluster", "redis-sentinel"):
        clock = RedisClock(REDIS_TIME_SCALE)
        redis_store = RedisStore.from_url(request.getfixturevalue(request.param.replace("-", "_") + "_url"))
        redis_store.client.flushdb()
        store = Scaled(redis_store, REDIS_TIME_SCALE)
    elif request.param == "postgres":
        clock = RedisClock(POSTGRES_TIME_SCALE)
        store = Scaled(_empty_postgres(request.getfixturevalue("postgres_url")), POSTGRES_TIME_SCALE)
    else:
        clock = Clock()
        store = (
            MemoryStore(clock=clock)
            if request.param == "memory"
            else SqliteStore(tmp_path / "s.db", clock=clock)
        )
    request.addfinalizer(store.close)
    return store, clock


class Scaled(Store):
    """A store on a server's clock (Redis, PostgreSQL) whose expiries are scaled like
    RedisClock's waits."""

    def __init__(self, store: Store, scale: float) -> None:
        self.store = store
        self.scale = scale

    def _ttl(self, ttl: float | None) -> float | None:
        return None if ttl is None else ttl * self.scale

    def get(self, key: str) -> str | None:
        return self.store.get(key)

    def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        self.store.set(key, value, ttl=self._ttl(ttl))

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def pop(self, key: str) -> str | None:
        return self.store.pop(key)

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        return self.store.incr(key, amount, ttl=self._ttl(ttl))

    def add_counts(self, key: str, counts: t.Mapping[str, int], *, ttl: float | None = None) -> None:
        self.store.add_counts(key, counts, ttl=self._ttl(ttl))

    def counts(self, key: str) -> dict[str, int]:
        return self.store.counts(key)

    def close(self) -> None:
        self.store.close()


def test_get_set_delete(backend: tuple[Store, Clock]) -> None:
    store, _ = backend
    assert store.get("k") is None
    store.set("k", "v")
    assert store.get("k") == "v"
    store.set("k", "w")
    assert store.get("k") == "w"
    store.delete("k")
    store.delete("k")
    assert store.get("k") is None


def test_values_are_text_exactly(backend: tuple[Store, Clock]) -> None:
    store, _ = backend
    value = '{"text": "Één moment", "n": 1}\n'
    store.set("k", value)
    assert store.get("k") == value


def test_expired_entries_never_come_back(backend: tuple[Store, Clock]) -> None:
    store, clock = backend
    store.set("k", "v", ttl=10)
    clock.now += 9.9
    assert store.get("k") == "v"
    clock.now += 0.2
    assert store.get("k") is None
    assert store.pop("k") is None
    assert store.incr("k") == 1  # an expired counter starts again


def test_pop_returns_once(backend: tuple[Store, Clock]) -> None:
    store, _ = backend
    store.set("k", "v")
    assert store.pop("k") == "v"
    assert store.pop("k") is None
    assert store.get("k") is None


def test_incr(backend: tuple[Store, Clock]) -> None:
    store, clock = backend
    assert store.incr("n", ttl=5) == 1
    assert store.incr("n", 5) == 6
    assert store.get("n") == "6"
    clock.now += 4
    assert store.incr("n", -1) == 5  # the expiry set at creation stays
    clock.now += 2
    assert store.get("n") is None


def test_counts(backend: tuple[Store, Clock]) -> None:
    store, clock = backend
    assert store.counts("bucket") == {}
    store.add_counts("bucket", {"requests": 1, "dest:number +3120****450": 1}, ttl=10)
    store.add_counts("bucket", {"requests": 1, "refused": 1, "requests ": 2}, ttl=10)
    store.add_counts("other", {"requests": 5})
    assert store.counts("bucket") == {
        "requests": 2,
        "dest:number +3120****450": 1,
        "refused": 1,
        "requests ": 2,
    }
    assert store.get("bucket") is None  # counters and values do not share keys
    store.set("bucket", "v")
    assert store.counts("bucket")["requests"] == 2
    clock.now += 9
    store.add_counts("bucket", {"requests": -1}, ttl=10)  # the expiry set at creation stays
    assert store.counts("bucket")["requests"] == 1
    clock.now += 2
    assert store.counts("bucket") == {}
    store.add_counts("bucket", {"refused": 1}, ttl=10)  # an expired key starts again
    assert store.counts("bucket") == {"refused": 1}
    assert store.counts("other") == {"requests": 5}


def _open(kind: str, where: str) -> Store:
    if kind == "postgres":
        return PostgresStore.from_url(where)
    return SqliteStore(where) if kind == "sqlite" else RedisStore.from_url(where)


def _hammer(kind: str, where: str, rounds: int, queue: t.Any) -> None:
    store = _open(kind, where)
    results = [store.incr("counter") for _ in range(rounds)]
    for _ in range(rounds):
        store.add_counts("bucket", {"requests": 1, f"worker:{os.getpid()}": 1})
    popped = [store.pop(f"item-{i}") for i in range(20)]
    queue.put((results, [p for p in popped if p is not None]))
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis", "redis_cluster", "redis_sentinel", "postgres"])
def test_incr_and_pop_are_atomic_across_processes(
    kind: str, tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    where = str(tmp_path / "shared.db") if kind == "sqlite" else request.getfixturevalue(f"{kind}_url")
    seed = _empty_postgres(where) if kind == "postgres" else _open(kind, where)
    request.addfinalizer(seed.close)
    if isinstance(seed, RedisStore):
        seed.client.flushdb()
    for i in range(20):
        seed.set(f"item-{i}", str(i))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_hammer, args=(kind, where, 100, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    counts = sorted(n for results, _ in outcomes for n in results)
    assert counts == list(range(1, 401))  # every increment seen exactly once
    popped = sorted(int(v) for _, values in outcomes for v in values)
    assert popped == list(range(20))  # every item popped by exactly one process
    counted = seed.counts("bucket")
    assert counted.pop("requests") == 400 and sorted(counted.values()) == [100] * 4


def test_sqlite_sweeps_expired_rows(tmp_path: pathlib.Path) -> None:
    import sqlite3

    clock = Clock()
    store = SqliteStore(tmp_path / "s.db", clock=clock)
    for i in range(499):
        store.set(f"k{i}", "v", ttl=1)
    clock.now += 2
    store.set("live", "v")  # the 500th write sweeps
    rows = sqlite3.connect(tmp_path / "s.db").execute("SELECT COUNT(*) FROM calltransfer_kv").fetchone()[0]
    assert rows == 1


def test_from_url(tmp_path: pathlib.Path) -> None:
    assert isinstance(from_url("memory://", instance_path=str(tmp_path)), MemoryStore)
    relative = from_url("sqlite:///data/t.db", instance_path=str(tmp_path))
    assert isinstance(relative, SqliteStore) and relative.path == tmp_path / "data" / "t.db"
    absolute = from_url(f"sqlite:///{tmp_path}/abs.db", instance_path="/elsewhere")
    assert isinstance(absolute, SqliteStore) and absolute.path == tmp_path / "abs.db"
    for bad in ("redis://localhost:port", "sqlite://", "sqlite:///", "postgresql://x:port/db"):
        with pytest.raises(ConfigurationError, match="CALLTRANSFER_STORE_URL"):
            from_url(bad, instance_path=str(tmp_path))


def test_default_store_is_sqlite_in_the_instance_folder(tmp_path: pathlib.Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config["CALLTRANSFER_VAPI_SECRET"] = "s"
    transfers = CallTransfer(app)
    with app.app_context():
        store = transfers.store
        assert isinstance(store, SqliteStore)
        assert store.path == tmp_path / "instance" / "calltransfer.sqlite3"
        assert not store.path.exists()  # opened on first use, not at start-up
        store.set("k", "v")
    assert (tmp_path / "instance" / "calltransfer.sqlite3").exists()


def test_store_argument_is_shared_by_apps() -> None:
    shared = MemoryStore()
    transfers = CallTransfer(store=shared)
    apps = [Flask(f"a{i}") for i in range(2)]
    for app in apps:
        app.config.update(CALLTRANSFER_VAPI_SECRET="s", CALLTRANSFER_STORE_URL="sqlite:///ignored.db")
        transfers.init_app(app)
        with app.app_context():
            assert transfers.store is shared


def test_store_url_config(tmp_path: pathlib.Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(CALLTRANSFER_VAPI_SECRET="s", CALLTRANSFER_STORE_URL="memory://")
    transfers = CallTransfer(app)
    with app.app_context():
        assert isinstance(transfers.store, MemoryStore)
    bad = Flask(__name__)
    bad.config.update(CALLTRANSFER_VAPI_SECRET="s", CALLTRANSFER_STORE_URL="mongodb://x")
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_STORE_URL"):
        CallTransfer(bad)


def test_redis_url_selects_the_redis_store(redis_url: str, tmp_path: pathlib.Path) -> None:
    store = from_url(redis_url, instance_path=str(tmp_path))
    assert isinstance(store, RedisStore)
    store.set("k", "v", ttl=60)
    assert store.client.get("calltransfer:k") == "v"
    assert 0 < store.client.pttl("calltransfer:k") <= 60000


def test_postgres_url_selects_the_postgres_store(postgres_url: str, tmp_path: pathlib.Path) -> None:
    # postgres:// as many hosts hand it out, with a password the store's repr never shows.
    url = postgres_url.replace("postgresql://calltransfer@", "postgres://calltransfer:unused-secret@")
    store = from_url(url, instance_path=str(tmp_path))
    try:
        assert isinstance(store, PostgresStore)
        assert "unused-secret" not in repr(store) and "***" in repr(store)
        store.set("k", "v", ttl=60)
        with store.engine.connect() as connection:
            value, left = connection.exec_driver_sql(
                "SELECT value, expires - EXTRACT(EPOCH FROM clock_timestamp()) FROM calltransfer_kv"
                " WHERE key = 'k'"
            ).one()
        assert value == "v" and 0 < left <= 60
    finally:
        store.close()


def test_postgres_without_its_tables_says_how_to_create_them(postgres_url: str) -> None:
    import sqlalchemy as sa

    from flask_calltransfer import StoreUnavailable
    from flask_calltransfer.store.postgres import tables_exist

    # A database of its own, so the module's tables stay as they are.
    admin = sa.create_engine(
        postgres_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.exec_driver_sql("DROP DATABASE IF EXISTS bare")
        connection.exec_driver_sql("CREATE DATABASE bare")
    admin.dispose()
    store = PostgresStore.from_url(postgres_url.rsplit("/", 1)[0] + "/bare")
    try:
        assert not tables_exist(store.engine)
        with pytest.raises(StoreUnavailable, match="flask calltransfer create-tables"):
            store.get("k")
        assert store.available  # a missing table is not an outage: the breaker stays closed
        create_tables(store.engine)
        create_tables(store.engine)  # and again: nothing changes, nothing fails
        assert tables_exist(store.engine)
        assert store.incr("n", ttl=5) == 1 and store.get("n") == "1"
    finally:
        store.close()


def test_postgres_store_leaves_the_apps_own_connections_as_they_were(postgres_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(
        postgres_url.replace("postgresql://", "postgresql+psycopg://"), pool_size=1, max_overflow=0
    )
    store = PostgresStore(engine, timeout=0.1)
    try:
        store.set("k", "v")
        assert store.get("k") == "v"
        with engine.connect() as connection:  # the one pooled connection the store just used
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar_one() == "0"
            assert connection.exec_driver_sql("SHOW lock_timeout").scalar_one() == "0"
    finally:
        engine.dispose()


def test_postgres_waits_for_a_locked_row_no_longer_than_its_timeout(postgres_url: str) -> None:

    from flask_calltransfer import StoreUnavailable

    store = _empty_postgres(postgres_url)
    store.timeout = 0.2
    store.set("k", "1")
    holder = _engine(postgres_url)
    try:
        with holder.begin() as connection:
            connection.exec_driver_sql("SELECT * FROM calltransfer_kv WHERE key = 'k' FOR UPDATE")
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="incr"):
                store.incr("k")
            assert time.monotonic() - started < 2
            assert not store.available  # a lock held elsewhere is an outage: the breaker opened
        time.sleep(store.cooldown)
        assert store.incr("k") == 2  # the lock is gone, and so is the breaker
    finally:
        holder.dispose()
        store.close()


def test_cli_checks_and_creates_the_postgres_tables(postgres_url: str, tmp_path: pathlib.Path) -> None:
    admin = _engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("DROP DATABASE IF EXISTS fresh")
        connection.exec_driver_sql("CREATE DATABASE fresh")
    admin.dispose()
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        CALLTRANSFER_VAPI_SECRET="s", CALLTRANSFER_STORE_URL=postgres_url.rsplit("/", 1)[0] + "/fresh"
    )
    transfers = CallTransfer(app)
    transfers.on_request(lambda call: "+31207948450")
    runner = app.test_cli_runner()
    try:
        missing = runner.invoke(args=["calltransfer", "check"])
        assert missing.exit_code == 1, missing.output
        assert "Store: <PostgresStore 'postgresql+psycopg://calltransfer@127.0.0.1:" in missing.output
        assert "tables are missing or out of date. Run 'flask calltransfer create-tables'" in missing.output
        sql = runner.invoke(args=["calltransfer", "create-tables", "--sql"])
        assert sql.exit_code == 0 and "CREATE TABLE IF NOT EXISTS calltransfer_kv (" in sql.output
        with app.app_context():
            assert not __import__("flask_calltransfer.store.postgres").store.postgres.tables_exist(
                transfers.store.engine  # type: ignore[attr-defined]
            )  # --sql printed, and changed nothing
        created = runner.invoke(args=["calltransfer", "create-tables"])
        assert created.exit_code == 0 and "tables are ready" in created.output
        ready = runner.invoke(args=["calltransfer", "check"])
        assert ready.exit_code == 0, ready.output
    finally:
        with app.app_context():
            transfers.store.close()


def test_cli_create_tables_needs_a_postgres_store(tmp_path: pathlib.Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(CALLTRANSFER_VAPI_SECRET="s", CALLTRANSFER_STORE_URL="memory://")
    CallTransfer(app)
    result = app.test_cli_runner().invoke(args=["calltransfer", "create-tables"])
    assert result.exit_code == 1
    assert (
        "<MemoryStore>, which needs no tables. Set CALLTRANSFER_STORE_URL to a postgresql://" in result.output
    )


def test_cli_check_reports_a_store_it_cannot_reach(tmp_path: pathlib.Path) -> None:
    from tests.servers import free_port

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        CALLTRANSFER_VAPI_SECRET="s", CALLTRANSFER_STORE_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    transfers = CallTransfer(app)
    transfers.on_request(lambda call: "+31207948450")
    result = app.test_cli_runner().invoke(args=["calltransfer", "check"])
    assert result.exit_code == 1
    assert (
        "Problem: The store cannot be used: The store <RedisStore 'calltransfer:'> failed on get"
        in result.output
    )


def test_postgres_store_opens_its_own_connections_after_a_fork(postgres_url: str) -> None:
    store = _empty_postgres(postgres_url)
    store.set("k", "parent")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            value = store.get("k") or "none"
            store.set("k", "child")
            os.write(write, value.encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 100) == b"parent"
        os.waitpid(child, 0)
        assert store.get("k") == "child"  # the parent's pooled connection still works
    finally:
        os.close(read)
        store.close()


def test_redis_cluster_url_spreads_keys_over_every_primary(
    redis_cluster_url: str, tmp_path: pathlib.Path
) -> None:
    store = from_url(redis_cluster_url, instance_path=str(tmp_path))
    try:
        assert isinstance(store, RedisStore)
        for i in range(30):
            assert store.incr(f"call:{i}", ttl=60) == 1
        cluster = t.cast(t.Any, store.client)
        holding = {
            node.port for node in cluster.get_primaries() if cluster.get_redis_connection(node).dbsize()
        }
        assert len(holding) == 3  # no hash tag pins the keys to one node: each is on its own slot
    finally:
        store.close()


def test_a_cluster_that_is_down_at_start_up_is_an_outage_not_a_crash(tmp_path: pathlib.Path) -> None:
    from flask_calltransfer import StoreUnavailable
    from tests.servers import free_port

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        CALLTRANSFER_VAPI_SECRET="s", CALLTRANSFER_STORE_URL=f"redis+cluster://127.0.0.1:{free_port()}"
    )
    transfers = CallTransfer(app)  # nothing is contacted yet
    with app.app_context(), pytest.raises(StoreUnavailable):
        transfers.store.get("k")
    with app.app_context():
        assert not transfers.store.available  # an outage: the breaker opened
        assert transfers.store.faults["failed: get"] == 1
    for url in (
        "redis+cluster://127.0.0.1:port",
        "redis+sentinel://127.0.0.1:26379",  # no service
        "redis+sentinel://127.0.0.1/calltransfer",  # no port
        "redis+sentinel://127.0.0.1:26379/calltransfer/zero",
    ):
        bad = Flask(__name__, instance_path=str(tmp_path))
        bad.config.update(CALLTRANSFER_VAPI_SECRET="s", CALLTRANSFER_STORE_URL=url)
        with pytest.raises(ConfigurationError, match="CALLTRANSFER_STORE_URL"):
            CallTransfer(bad)


def test_postgres_store_on_flask_sqlalchemys_engine(postgres_url: str, tmp_path: pathlib.Path) -> None:
    from flask_sqlalchemy import SQLAlchemy

    from flask_calltransfer import testing

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=postgres_url.replace("postgresql://", "postgresql+psycopg://"),
        CALLTRANSFER_SIPGATE_TOKEN="token",
    )
    db = SQLAlchemy(app)
    transfers = CallTransfer(app, store=PostgresStore(lambda: db.engine))
    transfers.add_destination("sales", NumberDestination("+31207948450", message="Connecting you to sales."))
    transfers.on_request(lambda call: "sales")
    assert app.test_cli_runner().invoke(args=["calltransfer", "create-tables"]).exit_code == 0
    client = app.test_client()
    session = f"flask-sqlalchemy-{time.monotonic_ns()}"

    def event(kind: str, **fields: t.Any) -> t.Any:
        body = testing.dumps(testing.sipgate_event(kind, session_id=session, **fields))
        return client.post("/calltransfer/sipgate", data=body, headers=testing.sipgate_headers("token"))

    assert event("user_speak", text="sales please").json["type"] == "speak"
    # The announced transfer waited in the app's own database, in the store's table.
    with app.app_context():
        kept = db.session.execute(
            sa_text("SELECT count(*) FROM calltransfer_kv WHERE key = :key"),
            {"key": f"sipgate:pending:{session}"},
        ).scalar_one()
        assert kept == 1
    assert event("assistant_speech_ended").json["target_phone_number"] == "+31207948450"
    with app.app_context():
        db.engine.dispose()


def test_postgres_tables_come_from_an_alembic_migration(postgres_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from alembic.operations.ops import UpgradeOps

    from flask_calltransfer.store.postgres import metadata
    from flask_calltransfer.store.postgres import tables_exist

    admin = _engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql("DROP DATABASE IF EXISTS migrated")
        connection.exec_driver_sql("CREATE DATABASE migrated")
    admin.dispose()
    engine = _engine(postgres_url.rsplit("/", 1)[0] + "/migrated")
    try:
        with engine.begin() as connection:
            context = MigrationContext.configure(connection)
            # What `flask db migrate` finds for an app whose target_metadata includes the store's.
            changes = compare_metadata(context, metadata)
            assert {change[0] for change in changes if isinstance(change, tuple)} == {
                "add_table",
                "add_index",
            }
            # What `flask db upgrade` then runs: the autogenerated operations, applied.
            from alembic.autogenerate import produce_migrations

            upgrade: UpgradeOps = produce_migrations(context, metadata).upgrade_ops  # type: ignore[assignment]
            operations = Operations(context)
            for op in upgrade.ops:
                # A new table's indexes come as a group of operations on that table.
                for step in getattr(op, "ops", [op]):
                    operations.invoke(step)
        assert tables_exist(engine)
        with engine.begin() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        store = PostgresStore(engine)
        assert store.incr("n") == 1 and store.pop("n") == "1"
    finally:
        engine.dispose()


def test_postgres_sweeps_expired_rows(postgres_url: str) -> None:
    store = _empty_postgres(postgres_url)
    try:
        for i in range(499):
            store.set(f"k{i}", "v", ttl=0.05)
        time.sleep(0.1)
        store.set("live", "v")  # the 500th write of this store sweeps
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM calltransfer_kv").scalar_one() == 1
    finally:
        store.close()


def test_a_failed_sweep_leaves_the_write_done_and_the_breaker_closed(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlalchemy as sa

    from flask_calltransfer.store import postgres

    store = _empty_postgres(postgres_url)
    # A sweep that fails the way a slow one does when its statement_timeout ends it.
    monkeypatch.setattr(postgres, "_SWEEPS", (sa.text("SELECT pg_sleep(1)"),))
    store.timeout = 0.2
    try:
        for i in range(499):
            store.set(f"k{i}", "v")
        assert store.pop("k0") == "v"  # the 500th write: it sweeps, the sweep fails
        assert store.get("k0") is None and store.available
        assert "Deleting expired rows from the PostgreSQL store failed" in caplog.text
    finally:
        store.close()


def test_postgres_on_a_serializable_app_engine_counts_every_increment(postgres_url: str) -> None:
    import concurrent.futures

    engine = _engine(postgres_url, isolation_level="SERIALIZABLE")
    store = PostgresStore(engine)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: store.incr("serial"), range(80)))
        assert sorted(results) == list(range(1, 81)) and not store.faults
    finally:
        engine.dispose()


def test_sentinel_urls_carry_user_and_percent_encoded_password() -> None:
    from flask_calltransfer.store.redis import _sentinel_client

    client = _sentinel_client("redis+sentinel", "app:p%40ss%2Fw@127.0.0.1:26379,127.0.0.2:26380/svc/2")(0.1)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("app", "p@ss/w", 2)
    watched = client.connection_pool.sentinel_manager.sentinels
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in watched
    ] == [("127.0.0.1", 26379), ("127.0.0.2", 26380)]


def test_connect_attempts_against_a_server_that_never_answers_are_bounded() -> None:
    import threading

    import psycopg

    from flask_calltransfer.store.postgres import _connect_within

    release = threading.Event()
    attempts = threading.BoundedSemaphore(1)

    def hangs() -> t.Any:
        release.wait(10)
        raise psycopg.OperationalError("gave up")

    try:
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="did not accept a connection within 0.1 s"):
            _connect_within(hangs, 0.1, attempts)
        assert 0.1 <= time.monotonic() - started < 1
        # The first attempt is still under way: the next fails at once, without another thread.
        threads = threading.active_count()
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            _connect_within(hangs, 0.1, attempts)
        assert time.monotonic() - started < 0.05 and threading.active_count() == threads
    finally:
        release.set()
    # Once the attempt gives up, its slot is free again.
    deadline = time.monotonic() + 5
    while not attempts.acquire(blocking=False):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    attempts.release()
    assert _connect_within(lambda: "connection", 1.0, attempts) == "connection"
