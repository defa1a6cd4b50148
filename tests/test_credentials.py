"""The credential matrix: right, wrong, missing, stale, future-dated and rotated credentials, on
every platform and verification mode. A request that fails gets the fixed 401 body and runs no
handler; one that passes is answered normally.
"""

from __future__ import annotations

import time
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing

NOW = int(time.time())
UNAUTHORIZED = {"code": 401, "status": "Unauthorized", "message": "The request could not be verified."}


class Mode(t.NamedTuple):
    platform: str
    config: dict[str, t.Any]
    body: bytes
    sign: t.Callable[[bytes, str, int], dict[str, str]]
    #: Whether the mode signs a timestamp, so stale and future requests can be told apart.
    timestamped: bool


VAPI_BODY = testing.dumps(testing.vapi_transfer_request())
SIPGATE_BODY = testing.dumps(testing.sipgate_event("user_speak", text="x"))
VOICEDOCK_BODY = testing.dumps(testing.voicedock_event("status-update"))

MODES = {
    "vapi-secret": Mode(
        "vapi",
        {"CALLTRANSFER_VAPI_SECRET": ["old-s", "new-s"]},
        VAPI_BODY,
        lambda body, secret, ts: testing.vapi_secret_headers(secret),
        False,
    ),
    "vapi-bearer": Mode(
        "vapi",
        {"CALLTRANSFER_VAPI_SECRET": ["old-s", "new-s"]},
        VAPI_BODY,
        lambda body, secret, ts: testing.vapi_bearer_headers(secret),
        False,
    ),
    "vapi-hmac": Mode(
        "vapi",
        {"CALLTRANSFER_VAPI_HMAC_SECRET": ["old-s", "new-s"]},
        VAPI_BODY,
        lambda body, secret, ts: testing.vapi_hmac_headers(body, secret, timestamp=ts),
        True,
    ),
    "sipgate-token": Mode(
        "sipgate",
        {"CALLTRANSFER_SIPGATE_TOKEN": ["old-s", "new-s"]},
        SIPGATE_BODY,
        lambda body, secret, ts: testing.sipgate_headers(secret),
        False,
    ),
    "voicedock-hmac": Mode(
        "voicedock",
        {"CALLTRANSFER_VOICEDOCK_SECRET": ["old-s", "new-s"]},
        VOICEDOCK_BODY,
        lambda body, secret, ts: testing.voicedock_headers(body, secret, timestamp=ts),
        True,
    ),
}

CASES = ["right", "rotated", "wrong", "missing", "empty", "stale", "future", "tampered-body"]


def build(mode: Mode) -> tuple[Flask, list[TransferRequest]]:
    transfers = CallTransfer()
    seen: list[TransferRequest] = []
    transfers.on_request(lambda call: seen.append(call) or "+31612345678")
    transfers.on_event("status-update")(lambda event: seen.append(event) or None)  # type: ignore[func-returns-value]
    app = Flask(__name__)
    app.config.update(
        CALLTRANSFER_PLATFORMS=[mode.platform], CALLTRANSFER_STORE_URL="memory://", **mode.config
    )
    transfers.init_app(app)
    return app, seen


def request_for(mode: Mode, case: str) -> tuple[bytes, dict[str, str], bool]:
    """The body and headers of one case, and whether it must be accepted."""
    body = mode.body
    if case == "right":
        return body, mode.sign(body, "new-s", NOW), True
    if case == "rotated":
        return body, mode.sign(body, "old-s", NOW), True
    if case == "wrong":
        return body, mode.sign(body, "guessed", NOW), False
    if case == "missing":
        return body, {"Content-Type": "application/json"}, False
    if case == "empty":
        return (
            body,
            {
                k: "" if k.lower() not in ("content-type",) else v
                for k, v in mode.sign(body, "new-s", NOW).items()
            },
            False,
        )
    if case == "stale":
        return body, mode.sign(body, "new-s", NOW - 3600), not mode.timestamped
    if case == "future":
        return body, mode.sign(body, "new-s", NOW + 3600), not mode.timestamped
    tampered = body.replace(b"}", b', "injected": 1}', 1)
    # Shared secrets do not cover the body: only signatures can catch a changed one.
    return tampered, mode.sign(body, "new-s", NOW), not mode.timestamped


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", list(MODES))
def test_credential_matrix(name: str, case: str) -> None:
    mode = MODES[name]
    app, seen = build(mode)
    body, headers, accepted = request_for(mode, case)
    with testing.record_signals(app) as heard:
        response = app.test_client().post(f"/calltransfer/{mode.platform}", data=body, headers=headers)
    if accepted:
        assert response.status_code in (200, 204), response.data
        assert len(seen) == 1
        assert heard.named("request-rejected") == []
    else:
        assert response.status_code == 401
        assert response.json == UNAUTHORIZED
        assert seen == []
        assert heard.one("request-rejected")["status"] == 401
