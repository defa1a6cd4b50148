"""A Redis store, for several machines sharing state."""

from __future__ import annotations

import threading
import typing as t
import urllib.parse

from ..deadlines import remaining
from .base import Store

if t.TYPE_CHECKING:
    import redis as redis_module

# INCRBY and the expiry of a new key in one step: Redis runs a script atomically.
_INCR = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if value == tonumber(ARGV[1]) and ARGV[2] ~= '' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""

# Every HINCRBY of one record in one step, and the key's expiry when the hash is new.
_ADD_COUNTS = """
for i = 2, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
if ARGV[1] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
"""


#: Fractions of the store timeout the faster clients wait.
_STEPS = (0.8, 0.6, 0.4, 0.2)


def _milliseconds(ttl: float | None) -> int | None:
    # Redis expiries are whole milliseconds and at least one.
    return None if ttl is None else max(1, int(ttl * 1000))


def _sentinel_client(scheme: str, rest: str) -> t.Callable[[float], redis_module.Redis]:
    """A function making clients of the primary the sentinels in ``rest`` name."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    userinfo, _, location = rest.rpartition("@")
    user, _, secret = userinfo.partition(":")
    # As in redis:// URLs: percent-encoded, so a password may hold "@", ":" or "/".
    username, password = urllib.parse.unquote(user) or None, urllib.parse.unquote(secret) or None
    hosts, _, path = location.partition("/")
    service, _, database = path.partition("/")
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a sentinel must be host:port, not {item!r}")
        sentinels.append((host, int(port)))
    if not service or not (database or "0").isdigit():
        raise ValueError("the path must name the service the sentinels watch, then the database")

    def client_for(seconds: float) -> redis_module.Redis:
        waits = {"socket_timeout": seconds, "socket_connect_timeout": seconds}
        # Through Any: redis-py types Sentinel in some releases and not in others (8.2 does, 8.1
        # does not), and the keyword arguments it passes on to each connection are untyped.
        sentinel: t.Any = Sentinel
        watchers = sentinel(sentinels, sentinel_kwargs=dict(waits), **waits)
        primary: redis_module.Redis = watchers.master_for(
            service,
            db=int(database or 0),
            username=username,
            password=password,
            ssl=scheme.startswith("rediss"),
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
            **waits,
        )
        return primary

    return client_for


class RedisStore(Store):
    """Keeps entries in Redis (6.2 or newer), shared by every worker on every machine.

    ``redis://host:6379/0`` (or ``rediss://``, ``unix://``) in ``CALLTRANSFER_STORE_URL``; install
    the ``redis`` extra. :meth:`pop` is ``GETDEL`` and :meth:`incr` a server-side script, so both
    are atomic across machines. Keys are prefixed with ``calltransfer:``.
    """

    def __init__(
        self,
        client: redis_module.Redis | None,
        *,
        prefix: str = "calltransfer:",
        timeout: float | None = None,
        client_for: t.Callable[[float], redis_module.Redis] | None = None,
    ) -> None:
        import redis
        from redis.commands.core import Script

        if client is None and (client_for is None or timeout is None):
            raise TypeError("RedisStore needs a client, or client_for and timeout to make one.")
        self._main = client
        self.prefix = prefix
        # As bytes, the scripts need no client to be prepared: each call names the client to run on.
        self._incr = Script(None, _INCR.encode())  # type: ignore[arg-type]
        self._add_counts = Script(None, _ADD_COUNTS.encode())  # type: ignore[arg-type]
        # RedisError covers a server that is down or slow, and one that cannot write: out of
        # memory (OOM), a read-only replica (READONLY), a loading dataset (LOADING). A cluster
        # whose nodes cannot be reached raises RedisClusterException, which is not a RedisError.
        self.outage_errors = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError)
        #: The client's own socket timeout; a nearer handler deadline uses a faster client.
        self.timeout = timeout
        self._client_for = client_for
        self._faster: dict[float, redis_module.Redis] = {}
        self._faster_lock = threading.Lock()

    @property
    def client(self) -> redis_module.Redis:
        """The client for operations with the whole store timeout to spend."""
        client = self._main
        if client is None:
            # A cluster client asks a node for the slots as it is made: made on first use, so an
            # app starts while its Redis is down and the store's breaker handles the outage. Made
            # outside the lock, so threads do not queue behind one slow connect; one made in a
            # race is closed again.
            assert self._client_for is not None and self.timeout is not None
            made = self._client_for(self.timeout)
            with self._faster_lock:
                if self._main is None:
                    self._main = made
                    return made
                client = self._main
            made.close()
        return client

    def _client(self) -> redis_module.Redis:
        # redis-py has no per-command timeout: near a deadline, a client whose sockets wait less,
        # from a few fixed steps so there are never more than four more pools.
        left = remaining()
        if left is None or self.timeout is None or self._client_for is None or left >= self.timeout:
            return self.client
        step = next((s for s in _STEPS if left >= self.timeout * s), _STEPS[-1]) * self.timeout
        client = self._faster.get(step)
        if client is None:
            with self._faster_lock:
                client = self._faster.get(step)
                if client is None:
                    client = self._faster[step] = self._client_for(step)
        return client

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 0.25) -> RedisStore:
        """A store on a new client for ``url``, whose connects and commands wait ``timeout`` s.

        ``redis+cluster://host:port`` (or ``rediss+cluster://``) names any node of a Redis
        Cluster; the client finds the others. Every operation touches one key, so each runs on
        the node that holds it. ``redis+sentinel://[user:password@]host:port,host:port/service/db``
        names the sentinels watching ``service``; each connection goes to the primary they name
        at that moment, so after a failover new connections reach the new primary.

        redis-py's own retries are off: a retry of a timed-out command costs another timeout
        inside a webhook's budget, and the store's circuit breaker already spaces out attempts.
        """
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        scheme, _, rest = url.partition("://")
        if scheme in ("redis+cluster", "rediss+cluster"):
            from redis.cluster import RedisCluster

            plain = f"{scheme.removesuffix('+cluster')}://{rest}"
            # Read now, so a URL that cannot work fails at init_app and not at the first call.
            redis.connection.parse_url(plain)  # type: ignore[no-untyped-call]

            def cluster_for(seconds: float) -> redis.Redis:
                cluster = RedisCluster.from_url(
                    plain,
                    decode_responses=True,
                    socket_timeout=seconds,
                    socket_connect_timeout=seconds,
                    retry=Retry(NoBackoff(), 0),
                )
                return t.cast("redis.Redis", cluster)

            return cls(None, timeout=timeout, client_for=cluster_for)

        if scheme in ("redis+sentinel", "rediss+sentinel"):
            return cls(None, timeout=timeout, client_for=_sentinel_client(scheme, rest))

        def client_for(seconds: float) -> redis.Redis:
            return redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=seconds,
                socket_connect_timeout=seconds,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
            )

        return cls(client_for(timeout), timeout=timeout, client_for=client_for)

    def get(self, key: str) -> str | None:
        return t.cast("str | None", self._client().get(self.prefix + key))

    def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        self._client().set(self.prefix + key, value, px=_milliseconds(ttl))

    def delete(self, key: str) -> None:
        self._client().delete(self.prefix + key)

    def pop(self, key: str) -> str | None:
        return t.cast("str | None", self._client().getdel(self.prefix + key))

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        expiry = _milliseconds(ttl)
        arguments = [amount, "" if expiry is None else expiry]
        return int(self._incr(keys=[self.prefix + key], args=arguments, client=self._client()))

    def add_counts(self, key: str, counts: t.Mapping[str, int], *, ttl: float | None = None) -> None:
        expiry = _milliseconds(ttl)
        arguments: list[str | int] = ["" if expiry is None else expiry]
        for name, amount in counts.items():
            arguments += [name, amount]
        # Counters live in hashes under their own prefix: a get() of the same key never meets one.
        self._add_counts(keys=[self.prefix + "counts:" + key], args=arguments, client=self._client())

    def counts(self, key: str) -> dict[str, int]:
        found = t.cast("dict[str, str]", self._client().hgetall(self.prefix + "counts:" + key))
        return {name: int(value) for name, value in found.items()}

    def close(self) -> None:
        if self._main is not None:
            self._main.close()
        for client in self._faster.values():
            client.close()

    def __repr__(self) -> str:
        return f"<RedisStore {self.prefix!r}>"
