"""The built-in platform adapters."""

from __future__ import annotations

import importlib.metadata
import typing as t

from .. import messages
from ..logs import logger
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


#: The entry point group through which an installed distribution offers a platform: the entry
#: point's name is the platform's name, its object the :class:`Platform` subclass.
ENTRY_POINT_GROUP: t.Final = "flask_calltransfer.platforms"


def installed_platforms() -> dict[str, type[Platform]]:
    """The built-in platforms and those installed distributions offer through
    :data:`ENTRY_POINT_GROUP`, by name, built-in ones first.

    An entry point that fails to load, is not a :class:`Platform` subclass, or takes a built-in
    platform's name is left out with an error in the log saying why: one broken distribution
    must not stop an app that does not use it. An app that names it in
    ``CALLTRANSFER_PLATFORMS`` is then told it is unknown.

    .. versionadded:: 0.1
    """
    found = dict(BUILTIN_PLATFORMS)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        name = entry_point.name
        where = f"{entry_point.value} ({getattr(entry_point.dist, 'name', None) or 'unknown distribution'})"
        if name in found:
            logger.error(messages.platform_entry_point_taken(name, where))
            continue
        try:
            cls = entry_point.load()
        except Exception as exc:
            logger.error(messages.platform_entry_point_failed(name, where, exc))
            continue
        if not (isinstance(cls, type) and issubclass(cls, Platform)) or getattr(cls, "name", None) != name:
            logger.error(messages.platform_entry_point_invalid(name, where))
            continue
        found[name] = cls
    return found


def worker_timeout(platforms: t.Iterable[type[Platform]] | None = None, *, margin: float = 1.0) -> int:
    """gunicorn's worker ``timeout`` for a server answering these platforms (default: all installed).

    It is the longest time any of them waits for a reply, plus ``margin``: a worker silent for
    longer is stuck where no deadline reaches (C code holding the GIL), nobody is waiting for its
    answer any more, and restarting it frees the requests queued behind it.
    """
    classes = list(platforms) if platforms is not None else list(installed_platforms().values())
    return int(max(cls.reply_budget for cls in classes) + margin + 0.999)


__all__ = [
    "BUILTIN_PLATFORMS",
    "ENTRY_POINT_GROUP",
    "Inbound",
    "Platform",
    "SipgatePlatform",
    "VapiPlatform",
    "VoiceDockPlatform",
    "installed_platforms",
    "worker_timeout",
]
