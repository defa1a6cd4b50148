"""Clients for the platforms' APIs, on httpx."""

from __future__ import annotations

from .base import ApiError
from .base import HttpClient
from .base import HttpSettings
from .vapi import VapiApiClient
from .vapi import VapiControlClient
from .voicedock import VoiceDockClient

__all__ = ["ApiError", "HttpClient", "HttpSettings", "VapiApiClient", "VapiControlClient", "VoiceDockClient"]
