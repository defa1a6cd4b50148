"""Per-app state: what one app needs at request time, kept in ``app.extensions["calltransfer"]``.

The extension builds it in ``init_app``; the views, the CLI, the dashboard and the pytest plugin
read it from here, without importing the extension.
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app

from . import messages

if t.TYPE_CHECKING:
    from flask import Flask

    from .analytics import TransferLog
    from .callbacks import CallbackBook
    from .config import Settings
    from .failover import Failover
    from .handlers import Registry
    from .models import Destination
    from .platforms.base import Platform
    from .platforms.base import Services
    from .screenpop import ScreenPop

#: The key in ``app.extensions``.
KEY: t.Final = "calltransfer"


@dataclasses.dataclass(frozen=True)
class State:
    """What one app needs at request time.

    .. versionadded:: 0.1
    """

    #: The extension object that registered this app (a :class:`~flask_calltransfer.CallTransfer`).
    extension: object
    #: The handlers, directory and pools, shared by every app of one extension.
    registry: Registry
    settings: Settings
    #: The enabled platforms, by name.
    platforms: dict[str, Platform]
    #: The platform classes the extension offers, enabled or not, by name.
    offered: dict[str, type[Platform]]
    fallback: Destination | None
    services: Services
    #: Seconds the handlers may take, by platform name.
    timeouts: dict[str, float]
    #: The transfer log, when ``CALLTRANSFER_LOG_TRANSFERS`` is on.
    transfer_log: TransferLog | None = None
    #: Whether the store is the in-memory one ``TESTING`` chose, which the pytest plugin empties
    #: before each test.
    isolated_store: bool = False
    #: The calls' transfer attempts, capacity and availability (set by ``init_app``).
    failover: Failover = dataclasses.field(default=None)  # type: ignore[assignment]
    #: Hand-off contexts and their signed links (set by ``init_app``).
    screenpop: ScreenPop = dataclasses.field(default=None)  # type: ignore[assignment]
    #: The callback tasks (set by ``init_app``).
    callbacks: CallbackBook = dataclasses.field(default=None)  # type: ignore[assignment]


def find(app: Flask | None = None) -> State | None:
    """The state of ``app`` (default: the current app), or ``None`` if no extension registered it."""
    extensions = (app if app is not None else current_app).extensions
    return t.cast("State | None", extensions.get(KEY))


def get(app: Flask | None = None, *, owner: object | None = None) -> State:
    """The state of ``app`` (default: the current app); with ``owner``, only if that extension
    registered it.

    :raises RuntimeError: if it did not.
    """
    state = find(app)
    if state is None or (owner is not None and state.extension is not owner):
        raise RuntimeError(messages.not_registered())
    return state
