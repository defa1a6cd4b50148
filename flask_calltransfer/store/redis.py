"""A Redis store, for several machines sharing state."""

from __future__ import annotations

import threading
import typing as t

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


class RedisStore(Store):
    """Keeps entries in Redis (6.2 or newer), shared by every worker on every machine.

    ``redis://host:6379/0`` (or ``rediss://``, ``unix://``) in ``CALLTRANSFER_STORE_URL``; install
    the ``redis`` extra. :meth:`pop` is ``GETDEL`` and :meth:`incr` a server-side script, so both
    are atomic across machines. Keys are prefixed with ``calltransfer:``.
    """

    def __init__(
        self,
        client: redis_module.Redis,
        *,
        prefix: str = "calltransfer:",
        timeout: float | None = None,
        client_for: t.Callable[[float], redis_module.Redis] | None = None,
    ) -> None:
        import redis

        self.client = client
        self.prefix = prefix
        self._incr = client.register_script(_INCR)
        self._add_counts = client.register_script(_ADD_COUNTS)
        # RedisError covers a server that is down or slow, and one that cannot write: out of
        # memory (OOM), a read-only replica (READONLY), a loading dataset (LOADING).
        self.outage_errors = (redis.exceptions.RedisError, OSError)
        #: The client's own socket timeout; a nearer handler deadline uses a faster client.
        self.timeout = timeout
        self._client_for = client_for
        self._faster: dict[float, redis_module.Redis] = {}
        self._faster_lock = threading.Lock()

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

        redis-py's own retries are off: a retry of a timed-out command costs another timeout
        inside a webhook's budget, and the store's circuit breaker already spaces out attempts.
        """
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

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
        self.client.close()
        for client in self._faster.values():
            client.close()

    def __repr__(self) -> str:
        return f"<RedisStore {self.prefix!r}>"
