"""An in-process store, for tests and single-process development servers."""

from __future__ import annotations

import threading
import time
import typing as t

from .base import Store


class MemoryStore(Store):
    """Keeps entries in a dict. Not shared between processes: gunicorn workers each get their own,
    so use it only where one process serves every request (tests, ``flask run``).

    ``memory://`` in ``CALLTRANSFER_STORE_URL``.
    """

    def __init__(self, *, clock: t.Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._counters: dict[str, tuple[dict[str, int], float | None]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _live(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        return value

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self._clock() + ttl

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def set(self, key: str, value: str, *, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (value, self._expiry(ttl))

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def pop(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key)
            self._data.pop(key, None)
            return value

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        with self._lock:
            current = self._live(key)
            if current is None:
                result, expires = amount, self._expiry(ttl)
            else:
                result, expires = int(current) + amount, self._data[key][1]
            self._data[key] = (str(result), expires)
            return result

    def _live_counts(self, key: str) -> dict[str, int] | None:
        entry = self._counters.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= self._clock():
            del self._counters[key]
            return None
        return None if entry is None else entry[0]

    def add_counts(self, key: str, counts: t.Mapping[str, int], *, ttl: float | None = None) -> None:
        with self._lock:
            current = self._live_counts(key)
            if current is None:
                current = {}
                self._counters[key] = (current, self._expiry(ttl))
            for name, amount in counts.items():
                current[name] = current.get(name, 0) + amount

    def counts(self, key: str) -> dict[str, int]:
        with self._lock:
            return dict(self._live_counts(key) or {})

    def clear(self) -> None:
        """Forget every entry and counter (the pytest plugin does, before each test)."""
        with self._lock:
            self._data.clear()
            self._counters.clear()

    def __repr__(self) -> str:
        return "<MemoryStore>"
