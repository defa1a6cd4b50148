"""Which hosts live call-control commands may be sent to.

A Vapi tool call names the URL its transfer is POSTed to (``call.monitor.controlUrl``), with the
app's Vapi public key attached. Anyone who can get a webhook accepted could otherwise aim the
server at any host it can reach: a loopback Redis, a cloud metadata address, an intranet page.
So the URL is checked before anything is sent, with the same parser httpx sends it with.
"""

from __future__ import annotations

import ipaddress
import typing as t

import httpx

from .. import messages

#: Vapi's control URLs are on its own domain (``phone-call-websocket.<region>...vapi.ai``).
DEFAULT_VAPI_CONTROL_HOSTS = ("*.vapi.ai",)


class HostAllowlist:
    """Host patterns (``"*.vapi.ai"``, ``"calls.example.com"``: https on port 443 only) and exact
    origins (``"http://127.0.0.1:8099"``: that scheme, host and port only, for local stand-ins).

    :raises ValueError: for an entry that is neither.
    """

    def __init__(self, entries: t.Iterable[str]) -> None:
        self._suffixes: list[str] = []
        self._hosts: set[str] = set()
        self._origins: set[tuple[str, str, int]] = set()
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise ValueError(messages.allowlist_entry_invalid(entry))
            entry = entry.strip().lower()
            if "://" in entry:
                url = httpx.URL(entry)
                if (
                    url.scheme not in ("http", "https")
                    or not url.host
                    or url.userinfo
                    or url.path not in ("", "/")
                ):
                    raise ValueError(messages.allowlist_entry_invalid(entry))
                self._origins.add((url.scheme, url.host.rstrip("."), _port(url)))
            elif entry.startswith("*."):
                self._suffixes.append(entry[1:].rstrip("."))
            elif "/" in entry or ":" in entry or "@" in entry or "*" in entry:
                raise ValueError(messages.allowlist_entry_invalid(entry))
            else:
                self._hosts.add(entry.rstrip("."))

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be sent to, or ``None`` when it may."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError):
            return "it is not a valid URL"
        if parsed.scheme not in ("http", "https"):
            return "only https URLs are allowed"
        if parsed.userinfo:
            return "it carries a user name or password"
        host = parsed.host.rstrip(".")
        if not host:
            return "it names no host"
        if (parsed.scheme, host, _port(parsed)) in self._origins:
            return None
        if _is_ip(host):
            return "it names an IP address, not a host name"
        if parsed.scheme != "https":
            return "only https URLs are allowed"
        if _port(parsed) != 443:
            return "it names a port other than 443"
        if host in self._hosts or any(host.endswith(suffix) for suffix in self._suffixes):
            return None
        return f"the host {host!r} is not in the allowlist"


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # inet_aton also reads "2130706433" and "0x7f.1" as addresses; no host name looks so.
        return all(part.isdigit() or part.startswith("0x") for part in host.split("."))
    return True
