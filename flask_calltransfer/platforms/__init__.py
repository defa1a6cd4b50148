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

__all__ = ["BUILTIN_PLATFORMS", "Inbound", "Platform", "SipgatePlatform", "VapiPlatform", "VoiceDockPlatform"]
