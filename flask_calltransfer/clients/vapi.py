"""Vapi live call control: commands POSTed to a call's ``monitor.controlUrl``."""

from __future__ import annotations

import typing as t
import urllib.parse

import httpx

from .. import messages
from .allowlist import DEFAULT_VAPI_CONTROL_HOSTS
from .allowlist import HostAllowlist
from .base import ApiError
from .base import HttpClient


class VapiControlClient:
    """Sends live call-control commands to Vapi calls.

    Each call's control URL arrives in its webhooks (``call.monitor.controlUrl``, also
    ``call.raw["call"]["monitor"]["controlUrl"]``). Available as ``transfers.vapi``.

    .. code-block:: python

        @transfers.on_request(platform="vapi")
        def check_first(call):
            control_url = call.raw["call"]["monitor"]["controlUrl"]
            transfers.vapi.say(control_url, "Please hold on, I'm checking.")

    :param public_key: sent as ``Authorization: Bearer`` when the assistant's ``monitorPlan``
        requires authenticated control (``CALLTRANSFER_VAPI_PUBLIC_KEY``).
    :param allowlist: the hosts commands may go to (``CALLTRANSFER_VAPI_CONTROL_HOSTS``); any other
        URL raises :class:`~flask_calltransfer.clients.ApiError` before a byte is sent.

    .. versionadded:: 0.1
    """

    def __init__(
        self, http: HttpClient, *, public_key: str | None = None, allowlist: HostAllowlist | None = None
    ) -> None:
        self._http = http
        self._allowlist = allowlist or HostAllowlist(DEFAULT_VAPI_CONTROL_HOSTS)
        self._headers = {"Content-Type": "application/json"}
        if public_key:
            self._headers["Authorization"] = f"Bearer {public_key}"

    def control(self, control_url: str, command: dict[str, t.Any], *, deadline: float | None = None) -> t.Any:
        """POST one command to a call's control URL, if its host is allowed."""
        refusal = self._allowlist.refusal(control_url)
        if refusal is not None:
            try:
                host = httpx.URL(control_url).host
            except (httpx.InvalidURL, ValueError, TypeError):
                host = "-"
            raise ApiError(messages.control_url_refused(host, refusal))
        return self._http.request(
            "POST", control_url, json_body=command, headers=self._headers, deadline=deadline
        )

    def transfer(
        self,
        control_url: str,
        destination: dict[str, t.Any],
        *,
        content: str | None = None,
        deadline: float | None = None,
    ) -> t.Any:
        """Transfer the call to a number or SIP destination in Vapi's JSON shape."""
        command: dict[str, t.Any] = {"type": "transfer", "destination": destination}
        if content is not None:
            command["content"] = content
        return self.control(control_url, command, deadline=deadline)

    def say(
        self, control_url: str, content: str, *, end_call_after: bool = False, deadline: float | None = None
    ) -> t.Any:
        """Make the assistant say ``content``; ``end_call_after`` hangs up afterwards."""
        command = {"type": "say", "content": content, "endCallAfterSpoken": end_call_after}
        return self.control(control_url, command, deadline=deadline)

    def end_call(self, control_url: str, *, deadline: float | None = None) -> t.Any:
        """End the call."""
        return self.control(control_url, {"type": "end-call"}, deadline=deadline)

    def close(self) -> None:
        self._http.close()


class VapiApiClient:
    """The few calls of Vapi's REST API that installing a transfer tool needs.

    Available as ``transfers.vapi_api`` when ``CALLTRANSFER_VAPI_API_KEY`` (a private API key) is set.

    .. versionadded:: 0.1
    """

    def __init__(self, http: HttpClient, *, api_url: str, api_key: str) -> None:
        self._http = http
        self.api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def _request(self, method: str, path: str, body: t.Any = None) -> t.Any:
        return self._http.request(method, self.api_url + path, json_body=body, headers=self._headers)

    def create_tool(self, tool: dict[str, t.Any]) -> dict[str, t.Any]:
        """Create a tool: ``POST /tool``; returns it with its ``id``."""
        return t.cast(dict[str, t.Any], self._request("POST", "/tool", tool))

    def attach_tool(self, assistant_id: str, tool_id: str) -> t.Any:
        """Add a tool to an assistant's ``model.toolIds``, keeping the rest of its model."""
        path = f"/assistant/{urllib.parse.quote(assistant_id, safe='')}"
        assistant = self._request("GET", path) or {}
        model = dict(assistant.get("model") or {}) if isinstance(assistant, dict) else {}
        tool_ids = [i for i in model.get("toolIds") or [] if i != tool_id]
        model["toolIds"] = [*tool_ids, tool_id]
        return self._request("PATCH", path, {"model": model})
