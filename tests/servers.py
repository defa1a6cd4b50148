"""Start real servers on loopback ports for end-to-end tests."""

from __future__ import annotations

import contextlib
import http.server
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing as t

ROOT = pathlib.Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    ready: t.Callable[[], object],
    log: t.IO[bytes],
    *,
    what: str = "the server did not start",
    processes: t.Sequence[subprocess.Popen[bytes]] = (),
    timeout: float = 30,
) -> None:
    """Return once ``ready()`` is true; raise with the end of ``log`` once ``timeout`` has passed
    or one of ``processes`` has ended."""
    deadline = time.monotonic() + timeout
    while not ready():
        if any(process.poll() is not None for process in processes) or time.monotonic() > deadline:
            log.seek(0)
            output = log.read()[-4000:].decode(errors="replace")
            raise RuntimeError(f"{what}: {output}")
        time.sleep(0.1)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: t.IO[bytes], timeout: float = 30) -> None:
    wait_until(lambda: _answers(port), log, processes=[process], timeout=timeout)


def _stop(processes: t.Iterable[subprocess.Popen[bytes]]) -> None:
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # in case a test left it paused
            process.terminate()
    for process in processes:
        process.wait(timeout=30)


def _need_redis() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise RuntimeError(
            "redis-server is not installed. Install Debian's redis-server package (make test does)."
        )


def _redis_cli(port: int, *command: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, timeout=10
    ).stdout.strip()


#: A redis-server on loopback that keeps nothing on disk.
_REDIS_EPHEMERAL = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


@contextlib.contextmanager
def gunicorn(
    app: str,
    *,
    env: dict[str, str],
    workers: int = 2,
    args: t.Sequence[str] = (),
    log_path: pathlib.Path | None = None,
) -> t.Iterator[tuple[str, int]]:
    """Run ``app`` (a ``module:factory()`` string) under gunicorn on a free loopback port; its
    stderr goes to ``log_path`` when given."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "example_app/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "/dev/null",
        *args,
        app,
    ]
    with _running(command, port, env, log_path) as address:
        yield address


#: The servers Flask users run, as the tests start them: name -> how to serve ``module:factory``.
SERVER_KINDS = ("flask-run", "gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent", "waitress")


@contextlib.contextmanager
def serve(
    kind: str, module: str, factory: str, *, env: dict[str, str], log_path: pathlib.Path | None = None
) -> t.Iterator[tuple[str, int]]:
    """Run the app ``module:factory()`` under one of :data:`SERVER_KINDS` on a loopback port.

    :param log_path: where the server's stderr goes (default: a temporary file).
    :raises ServerDied: on leaving, if the server process ended by itself meanwhile.
    """
    port = free_port()
    python = [sys.executable, "-m"]
    if kind == "flask-run":
        # Threaded, as ``flask run`` is by default; no reloader outside debug mode.
        command = [*python, "flask", "--app", f"{module}:{factory}", "run", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
    elif kind == "waitress":
        command = [*python, "waitress", "--listen", f"127.0.0.1:{port}", "--threads", "4"]
        command += ["--call", f"{module}:{factory}"]
    elif kind.startswith("gunicorn-"):
        worker = kind.removeprefix("gunicorn-")
        command = [*python, "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
        command += ["--worker-class", worker, "--threads", "4" if worker == "gthread" else "1"]
        command += ["--timeout", "30", f"{module}:{factory}()"]
    else:
        raise ValueError(f"unknown server kind {kind!r}")
    with _running(command, port, env, log_path) as address:
        yield address


class ServerDied(RuntimeError):
    """The server process ended while a test was using it."""


@contextlib.contextmanager
def _running(
    command: list[str], port: int, env: dict[str, str], log_path: pathlib.Path | None = None
) -> t.Iterator[tuple[str, int]]:
    # A file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
    log = open(log_path, "w+b") if log_path is not None else tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log
    )
    died = False
    try:
        wait_for_port(port, process, log)
        yield "127.0.0.1", port
        died = process.poll() is not None
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
    if died:
        raise ServerDied(f"The server ended by itself with exit code {process.returncode}: {command}")


@contextlib.contextmanager
def redis_process(port: int | None = None) -> t.Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run a real redis-server on a loopback port, without persistence; yields its URL and process,
    so a test can stop or pause it by PID."""
    _need_redis()
    port = port or free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), *_REDIS_EPHEMERAL], stdout=log, stderr=log
    )
    try:
        wait_for_port(port, process, log)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        _stop([process])
        log.close()


def _free_cluster_port() -> int:
    # A cluster node also listens on its port + 10000, for the cluster bus: both must be free.
    for _ in range(100):
        port = random.randint(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("No free pair of loopback ports for a Redis Cluster node.")


@contextlib.contextmanager
def redis_cluster(primaries: int = 3) -> t.Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """Run a real Redis Cluster of ``primaries`` redis-servers on free loopback ports, without
    persistence; yields a ``redis+cluster://`` URL naming one node, and the processes."""
    _need_redis()
    ports = [_free_cluster_port() for _ in range(primaries)]
    with tempfile.TemporaryDirectory(prefix="calltransfer-cluster-") as folder:
        log = tempfile.TemporaryFile()
        processes = [
            subprocess.Popen(
                ["redis-server", "--port", str(port), *_REDIS_EPHEMERAL]
                + ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]
                + ["--cluster-config-file", f"{folder}/nodes-{port}.conf"],
                stdout=log,
                stderr=log,
            )
            for port in ports
        ]
        try:
            for port, process in zip(ports, processes, strict=True):
                wait_for_port(port, process, log)
            subprocess.run(
                ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports)]
                + ["--cluster-replicas", "0", "--cluster-yes"],
                stdout=log,
                stderr=log,
                check=True,
                timeout=60,
            )

            def formed() -> bool:
                return all("cluster_state:ok" in _redis_cli(port, "cluster", "info") for port in ports)

            wait_until(formed, log, what="the Redis Cluster did not form", processes=processes)
            yield f"redis+cluster://127.0.0.1:{ports[0]}/0", processes
        finally:
            _stop(processes)
            log.close()


class RedisSentinels:
    """A real Redis primary with one replica, watched by three sentinels, on loopback; a test can
    kill the primary and wait for the sentinels to promote the replica."""

    SERVICE = "calltransfer"

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder
        self.log = tempfile.TemporaryFile()
        self.ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.url = "redis+sentinel://" + ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        self.url += f"/{self.SERVICE}/0"

    def _start(self, port: int, *args: str) -> None:
        # A replica's first sync writes an RDB file into its working directory even without --save:
        # the test's folder, not the checkout.
        self.processes[port] = subprocess.Popen(
            ["redis-server", *args], stdout=self.log, stderr=self.log, cwd=self.folder
        )
        wait_for_port(port, self.processes[port], self.log)

    def start(self) -> None:
        primary, replica = self.ports
        self._start(primary, "--port", str(primary), *_REDIS_EPHEMERAL)
        self._start(
            replica, "--port", str(replica), *_REDIS_EPHEMERAL, "--replicaof", "127.0.0.1", str(primary)
        )
        for port in self.sentinel_ports:
            config = self.folder / f"sentinel-{port}.conf"
            # Sentinels rewrite their configuration as they learn: each has a file of its own.
            config.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 500\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n"
            )
            self._start(port, str(config), "--sentinel")
        self.wait(lambda: self._sentinel(self.sentinel_ports[0], "replicas") and self._others_known())

    def _sentinel(self, port: int, what: str) -> str:
        return _redis_cli(port, "sentinel", what, self.SERVICE)

    def _others_known(self) -> bool:
        return all("num-other-sentinels\n2" in self._sentinel(port, "master") for port in self.sentinel_ports)

    def primary_port(self) -> int | None:
        """The port the sentinels name as primary now."""
        found = self._sentinel(self.sentinel_ports[0], "get-master-addr-by-name").split()
        return int(found[1]) if len(found) == 2 else None

    def kill_primary(self) -> int:
        port = t.cast(int, self.primary_port())
        process = self.processes[port]
        process.kill()
        process.wait(timeout=10)
        return port

    def wait(self, condition: t.Callable[[], object], timeout: float = 30) -> None:
        wait_until(condition, self.log, what="Redis with sentinels did not get ready", timeout=timeout)

    def stop(self) -> None:
        _stop(self.processes.values())
        self.log.close()


@contextlib.contextmanager
def redis_sentinels() -> t.Iterator[RedisSentinels]:
    """A started :class:`RedisSentinels`, stopped at the end."""
    _need_redis()
    with tempfile.TemporaryDirectory(prefix="calltransfer-sentinel-") as folder:
        sentinels = RedisSentinels(pathlib.Path(folder))
        try:
            sentinels.start()
            yield sentinels
        finally:
            sentinels.stop()


@contextlib.contextmanager
def redis_server() -> t.Iterator[str]:
    """Run a real redis-server on a free loopback port, without persistence; yields its URL."""
    with redis_process() as (url, _):
        yield url


def _postgres_binaries() -> pathlib.Path:
    # Debian keeps the server's programs out of PATH, under the major version's folder.
    found = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path is None:
        raise RuntimeError(
            "The PostgreSQL server is not installed. Install Debian's postgresql package (make test does)."
        )
    return pathlib.Path(on_path).parent


def _postgres_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: under root, the server runs as Debian's postgres user,
    whose uid and gid this gives."""
    if os.geteuid() != 0:
        return None
    import pwd

    user = pwd.getpwnam("postgres")
    return user.pw_uid, user.pw_gid


class PostgresCluster:
    """A real PostgreSQL server in a temporary cluster on a free loopback port, without fsync, that
    a test can stop, start again on the same port and data, and pause by PID."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.binaries = _postgres_binaries()
        self.user = _postgres_user()
        self.port = free_port()
        self.data, self.sockets = folder / "data", folder / "sockets"
        self.sockets.mkdir()
        if self.user is not None:
            for path in (folder, self.sockets):
                os.chown(path, *self.user)
        self.log = tempfile.TemporaryFile()
        subprocess.run(
            [self.binaries / "initdb", "-D", self.data, "-U", "calltransfer", "-A", "trust", "-E", "UTF8"]
            + ["--no-sync"],
            stdout=self.log,
            stderr=self.log,
            check=True,
            preexec_fn=self.demote if self.user is not None else None,
            timeout=120,
        )
        self.url = f"postgresql://calltransfer@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None

    def demote(self) -> None:
        """Run in the child before the server's programs: they may not run as root."""
        if self.user is not None:
            os.setgid(self.user[1])
            os.setuid(self.user[0])

    def start(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.sockets),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        options = [item for name, value in settings.items() for item in ("-c", f"{name}={value}")]
        self.process = subprocess.Popen(
            [self.binaries / "postgres", "-D", self.data, "-p", str(self.port), *options],
            stdout=self.log,
            stderr=self.log,
            preexec_fn=self.demote if self.user is not None else None,
        )
        wait_for_port(self.port, self.process, self.log)
        # The port opens before the server accepts sessions ("the database system is starting up").
        wait_until(
            lambda: _accepts_sessions(self.url),
            self.log,
            what="PostgreSQL did not start",
            processes=[self.process],
        )

    def pids(self) -> list[int]:
        """The server and every process it started (one per connection, and its helpers)."""
        assert self.process is not None
        main = self.process.pid
        children = pathlib.Path(f"/proc/{main}/task/{main}/children").read_text().split()
        return [main, *map(int, children)]

    def pause(self) -> None:
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self.pids():
            os.kill(pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.resume()  # in case a test left it paused
            # Fast shutdown: open connections are cut, not waited for.
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)
        self.process = None


@contextlib.contextmanager
def postgres_cluster() -> t.Iterator[PostgresCluster]:
    """A started :class:`PostgresCluster`, stopped and removed at the end."""
    with tempfile.TemporaryDirectory(prefix="calltransfer-pg-") as folder:
        cluster = PostgresCluster(pathlib.Path(folder))
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
            cluster.log.close()


def _accepts_sessions(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@contextlib.contextmanager
def postgres_server() -> t.Iterator[str]:
    """Run a real PostgreSQL server on a free loopback port; yields its URL."""
    with postgres_cluster() as cluster:
        yield cluster.url


_HOLD_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
connection.execute("COMMIT")
"""


@contextlib.contextmanager
def sqlite_locked(path: pathlib.Path) -> t.Iterator[None]:
    """Another process holds an exclusive lock on the SQLite file at ``path`` inside the block.

    Entering proves that process could take the lock (so nobody else holds one); leaving
    releases it and waits for the process to end.
    """
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        if holder.stdout.readline() != b"locked\n":
            raise RuntimeError(f"Another process could not lock {path}.")
        try:
            yield
        finally:
            holder.stdin.close()
    if holder.returncode != 0:
        raise RuntimeError(f"The process holding {path} ended with exit code {holder.returncode}.")


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium with a throwaway profile and no network of its own (no updates,
    sync or QUIC); ``args`` such as ``--dump-dom URL``."""
    browser = shutil.which("chromium")
    if browser is None:
        raise RuntimeError("chromium is not installed. Install Debian's chromium package (.ci/run does).")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            timeout=timeout,
            check=True,
        )


@contextlib.contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> t.Iterator[str]:
    """Serve ``handler`` on a free loopback port in a background thread; yields the base URL,
    without a trailing slash."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
