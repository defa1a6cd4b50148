"""The built-in platform adapters."""

from __future__ import annotations

import typing as t

from .base import Inbound
from .base import Platform
from .sipgate import SipgatePlatform
from .vapi import VapiPlatform
from .voicedock import VoiceDockPlatform

#: Every built-in platform, by name.
BUILTIN_PLATFORMS: t.Final[dict[str, type[Platform]]] = {
    VapiPlatform.name: VapiPlatform,
    SipgatePlatform.name: SipgatePlatform,
    VoiceDockPlatform.name: VoiceDockPlatform,
}


def worker_timeout(platforms: t.Iterable[type[Platform]] | None = None, *, margin: float = 1.0) -> int:
    """gunicorn's worker ``timeout`` for a server answering these platforms (default: all built-in).

    It is the longest time any of them waits for a reply, plus ``margin``: a worker silent for
    longer is stuck where no deadline reaches (C code holding the GIL), nobody is waiting for its
    answer any more, and restarting it frees the requests queued behind it.
    """
    classes = list(platforms) if platforms is not None else list(BUILTIN_PLATFORMS.values())
    return int(max(cls.reply_budget for cls in classes) + margin + 0.999)


__all__ = [
    "BUILTIN_PLATFORMS",
    "Inbound",
    "Platform",
    "SipgatePlatform",
    "VapiPlatform",
    "VoiceDockPlatform",
    "worker_timeout",
]
