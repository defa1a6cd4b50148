"""The VoiceDock REST API: call control, SIP trunks, numbers and assistant tools."""

from __future__ import annotations

import typing as t
import urllib.parse

from .base import HttpClient


def _segment(value: str) -> str:
    # Ids come from webhooks; quoting keeps a hostile id from changing the path.
    return urllib.parse.quote(value, safe="")


class VoiceDockClient:
    """A client for the parts of the VoiceDock API that transfers need.

    Available as ``transfers.voicedock`` when ``CALLTRANSFER_VOICEDOCK_API_KEY`` is set.

    .. code-block:: python

        @transfers.on_request(platform="voicedock")
        def by_api(call):
            transfers.voicedock.transfer(call.call_id, "+31612345678", message="One moment, please.")

    Every method raises :class:`~flask_calltransfer.clients.ApiError` when the API answers with an
    error after the retries, or cannot be reached in time.

    .. versionadded:: 0.1
    """

    def __init__(self, http: HttpClient, *, api_url: str, api_key: str) -> None:
        self._http = http
        self.api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def _request(self, method: str, path: str, body: t.Any = None, deadline: float | None = None) -> t.Any:
        return self._http.request(
            method, self.api_url + path, json_body=body, headers=self._headers, deadline=deadline
        )

    def control(self, call_id: str, command: dict[str, t.Any], *, deadline: float | None = None) -> t.Any:
        """Send a call-control command to an active call: ``POST /calls/{id}/control``."""
        return self._request("POST", f"/calls/{_segment(call_id)}/control", command, deadline)

    def transfer(
        self, call_id: str, destination: str, *, message: str | None = None, deadline: float | None = None
    ) -> t.Any:
        """Transfer an active call to an E.164 number or a SIP URI, optionally saying ``message`` first."""
        command: dict[str, t.Any] = {"type": "transfer", "destination": destination}
        if message is not None:
            command["message"] = message
        return self.control(call_id, command, deadline=deadline)

    def say(
        self, call_id: str, content: str, *, end_after: bool = False, deadline: float | None = None
    ) -> t.Any:
        """Make the assistant say ``content``; ``end_after`` hangs up afterwards."""
        return self.control(
            call_id, {"type": "say", "content": content, "end_after": end_after}, deadline=deadline
        )

    def end_call(self, call_id: str, *, message: str | None = None, deadline: float | None = None) -> t.Any:
        """End an active call, optionally saying ``message`` first."""
        command: dict[str, t.Any] = {"type": "end-call"}
        if message is not None:
            command["message"] = message
        return self.control(call_id, command, deadline=deadline)

    def create_sip_trunk(
        self,
        *,
        name: str,
        host: str,
        port: int = 5060,
        username: str | None = None,
        password: str | None = None,
    ) -> t.Any:
        """Create a SIP trunk for transfers through your own phone system: ``POST /sip-trunks``."""
        body: dict[str, t.Any] = {"name": name, "host": host, "port": port}
        if username is not None:
            body["username"] = username
        if password is not None:
            body["password"] = password
        return self._request("POST", "/sip-trunks", body)

    def set_transfer_trunk(self, number_id: str, trunk_id: str | None) -> t.Any:
        """Route a number's transfers through a SIP trunk (``None`` removes it): ``PATCH /numbers/{id}``."""
        return self._request("PATCH", f"/numbers/{_segment(number_id)}", {"transfer_trunk_id": trunk_id})

    def update_assistant_tools(self, assistant_id: str, tools: list[dict[str, t.Any]]) -> t.Any:
        """Install ``tools`` on an assistant, replacing its tools of the same types.

        The assistant's other tools and the rest of its ``llm_config`` are kept: it is read first,
        then written back whole, so a partial update cannot erase the model or the prompt.
        """
        path = f"/assistants/{_segment(assistant_id)}"
        assistant = self._request("GET", path) or {}
        llm_config = dict(assistant.get("llm_config") or {}) if isinstance(assistant, dict) else {}
        replaced = {tool.get("type") for tool in tools}
        kept = [
            tool
            for tool in llm_config.get("tools") or []
            if not (isinstance(tool, dict) and tool.get("type") in replaced)
        ]
        llm_config["tools"] = kept + list(tools)
        return self._request("PATCH", path, {"llm_config": llm_config})

    def close(self) -> None:
        self._http.close()
