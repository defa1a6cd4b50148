"""The built-in platform adapters."""

from __future__ import annotations

import typing as t

from .base import Inbound
from .base import Platform
from .vapi import VapiPlatform

#: Every built-in platform, by name.
BUILTIN_PLATFORMS: t.Final[dict[str, type[Platform]]] = {
    VapiPlatform.name: VapiPlatform,
}

__all__ = ["BUILTIN_PLATFORMS", "Inbound", "Platform", "VapiPlatform"]
