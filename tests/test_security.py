"""Request verification: shared secrets, Bearer tokens and HMAC signatures, on the raw body."""

from __future__ import annotations

import time
import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import RequestVerificationFailed
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from flask_calltransfer.platforms import Inbound
from flask_calltransfer.security import HmacVerifier
from flask_calltransfer.security import SharedSecretVerifier
from flask_calltransfer.security import matches_any

URL = "/calltransfer/vapi"
UNAUTHORIZED = {"code": 401, "status": "Unauthorized", "message": "The request could not be verified."}
HMAC_SECRET = "hmac-secret-abcdef"


def make(**config: t.Any) -> tuple[Flask, FlaskClient, list[TransferRequest]]:
    app = Flask(__name__)
    # Each test its own store: the same signed bytes sent by two tests are two requests here.
    app.config.update({"CALLTRANSFER_STORE_URL": "memory://", **config})
    transfers = CallTransfer(app)
    seen: list[TransferRequest] = []

    @transfers.on_request
    def route(call: TransferRequest) -> str:
        seen.append(call)
        return "+31612345678"

    return app, app.test_client(), seen


BODY = testing.dumps(testing.vapi_transfer_request())


def assert_accepted(response: t.Any, seen: list[TransferRequest]) -> None:
    assert response.status_code == 200, response.json
    assert response.json["destination"]["number"] == "+31612345678"
    assert len(seen) == 1


def assert_rejected(app: Flask, client: FlaskClient, seen: list[TransferRequest], **post: t.Any) -> None:
    with testing.record_signals(app) as heard:
        response = client.post(URL, **post)
    assert response.status_code == 401
    assert response.json == UNAUTHORIZED
    assert seen == []
    rejected = heard.one("request-rejected")
    assert (rejected["platform"], rejected["status"]) == ("vapi", 401)
    assert set(rejected) == {"platform", "reason", "status"}
    assert heard.named("transfer-requested") == []


# Shared secret ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Vapi-Secret": "s1"},
        {"x-vapi-secret": "s1"},
        {"Authorization": "Bearer s1"},
        {"Authorization": "bearer s1"},
        {"X-Vapi-Secret": "s2"},  # the second secret of a rotation
    ],
)
def test_shared_secret_accepted(headers: dict[str, str]) -> None:
    app, client, seen = make(CALLTRANSFER_VAPI_SECRET=["s1", "s2"])
    assert_accepted(client.post(URL, data=BODY, headers=headers), seen)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Vapi-Secret": ""},
        {"X-Vapi-Secret": "s3"},
        {"X-Vapi-Secret": "s1 "},
        {"X-Vapi-Secret": "S1"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic czE6"},
        {"Authorization": "Bearer"},
        {"X-Other": "s1"},
    ],
)
def test_shared_secret_rejected(headers: dict[str, str]) -> None:
    app, client, seen = make(CALLTRANSFER_VAPI_SECRET=["s1", "s2"])
    assert_rejected(app, client, seen, data=BODY, headers=headers)


def test_custom_secret_header() -> None:
    app, client, seen = make(CALLTRANSFER_VAPI_SECRET="s1", CALLTRANSFER_VAPI_SECRET_HEADER="X-Webhook-Token")
    assert_rejected(app, client, seen, data=BODY, headers={"X-Vapi-Secret": "s1"})
    assert_accepted(client.post(URL, data=BODY, headers={"X-Webhook-Token": "s1"}), seen)


def test_rejections_do_not_leak_the_secret_or_payload(caplog: pytest.LogCaptureFixture) -> None:
    app, client, seen = make(CALLTRANSFER_VAPI_SECRET="super-secret-value")
    with testing.record_signals(app) as heard:
        client.post(URL, data=BODY, headers={"X-Vapi-Secret": "super-secret-valuX"})
    text = caplog.text + repr(heard.events)
    assert "super-secret-valu" not in text
    assert "+14155550100" not in text
    assert "X-Vapi-Secret" in heard.one("request-rejected")["reason"]


# HMAC ---------------------------------------------------------------------------------------------


def hmac_app(**config: t.Any) -> tuple[Flask, FlaskClient, list[TransferRequest]]:
    return make(CALLTRANSFER_VAPI_HMAC_SECRET=HMAC_SECRET, **config)


def test_hmac_default_plan_accepted() -> None:
    app, client, seen = hmac_app()
    assert_accepted(client.post(URL, data=BODY, headers=testing.vapi_hmac_headers(BODY, HMAC_SECRET)), seen)


def test_hmac_millisecond_timestamps_are_understood() -> None:
    app, client, seen = hmac_app()
    headers = testing.vapi_hmac_headers(BODY, HMAC_SECRET, timestamp=int(time.time() * 1000))
    assert_accepted(client.post(URL, data=BODY, headers=headers), seen)


@pytest.mark.parametrize(
    "change",
    [
        "wrong secret",
        "tampered body",
        "missing signature",
        "missing timestamp",
        "stale timestamp",
        "future timestamp",
        "garbage timestamp",
        "nan timestamp",
        "signature not hex",
        "other timestamp than signed",
    ],
)
def test_hmac_rejected(change: str) -> None:
    app, client, seen = hmac_app()
    body = BODY
    headers = testing.vapi_hmac_headers(BODY, HMAC_SECRET)
    if change == "wrong secret":
        headers = testing.vapi_hmac_headers(BODY, "another-secret")
    elif change == "tampered body":
        body = BODY.replace(b"+14155550100", b"+14155550101")
    elif change == "missing signature":
        del headers["x-signature"]
    elif change == "missing timestamp":
        del headers["x-timestamp"]
    elif change == "stale timestamp":
        headers = testing.vapi_hmac_headers(BODY, HMAC_SECRET, timestamp=int(time.time()) - 301)
    elif change == "future timestamp":
        headers = testing.vapi_hmac_headers(BODY, HMAC_SECRET, timestamp=int(time.time()) + 301)
    elif change == "garbage timestamp":
        headers = testing.vapi_hmac_headers(BODY, HMAC_SECRET, timestamp="yesterday")
    elif change == "nan timestamp":
        headers = testing.vapi_hmac_headers(BODY, HMAC_SECRET, timestamp="nan")
    elif change == "signature not hex":
        headers["x-signature"] = "zz" * 32
    elif change == "other timestamp than signed":
        headers["x-timestamp"] = str(int(headers["x-timestamp"]) - 1)
    assert_rejected(app, client, seen, data=body, headers=headers)


def test_hmac_window_is_configurable() -> None:
    app, client, seen = hmac_app(CALLTRANSFER_VAPI_HMAC_MAX_AGE=3600)
    headers = testing.vapi_hmac_headers(BODY, HMAC_SECRET, timestamp=int(time.time()) - 1800)
    assert_accepted(client.post(URL, data=BODY, headers=headers), seen)


def test_hmac_every_option() -> None:
    plan = {
        "algorithm": "sha512",
        "signature_header": "X-Vapi-Signature",
        "timestamp_header": "X-Vapi-Timestamp",
        "payload_format": "{method} {url} {timestamp}:{body}",
        "encoding": "base64",
        "prefix": "v1=",
    }
    app, client, seen = hmac_app(**{f"CALLTRANSFER_VAPI_HMAC_{k.upper()}": v for k, v in plan.items()})
    headers = testing.vapi_hmac_headers(BODY, HMAC_SECRET, url=f"http://localhost{URL}", **plan)
    assert headers["X-Vapi-Signature"].startswith("v1=")
    assert_accepted(client.post(URL, data=BODY, headers=headers), seen)


def test_hmac_of_the_body_alone_without_timestamp() -> None:
    app, client, seen = hmac_app(
        CALLTRANSFER_VAPI_HMAC_PAYLOAD_FORMAT="{body}",
        CALLTRANSFER_VAPI_HMAC_TIMESTAMP_HEADER=None,
        CALLTRANSFER_VAPI_HMAC_MAX_AGE=None,  # said out loud: there is no replay window
        CALLTRANSFER_VAPI_HMAC_SIGNATURE_HEADER="x-vapi-signature",
    )
    signature = testing.hmac_signature(BODY, HMAC_SECRET, payload_format="{body}")
    assert_accepted(client.post(URL, data=BODY, headers={"x-vapi-signature": signature}), seen)


def test_hmac_verifies_the_raw_bytes_not_reserialised_json() -> None:
    app, client, seen = hmac_app()
    body = b'{ "message" : { "type" : "transfer-destination-request",\n "call": {"id": "c-1"} } }'
    assert_accepted(client.post(URL, data=body, headers=testing.vapi_hmac_headers(body, HMAC_SECRET)), seen)


def test_shared_secret_and_hmac_together_accept_either() -> None:
    app, client, seen = hmac_app(CALLTRANSFER_VAPI_SECRET="s1")
    assert client.post(URL, data=BODY, headers={"X-Vapi-Secret": "s1"}).status_code == 200
    assert (
        client.post(URL, data=BODY, headers=testing.vapi_hmac_headers(BODY, HMAC_SECRET)).status_code == 200
    )
    assert client.post(URL, data=BODY, headers={"X-Vapi-Secret": "s2"}).status_code == 401


def test_the_log_names_the_credential_that_failed_not_one_never_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, client, seen = hmac_app(CALLTRANSFER_VAPI_SECRET="s1")
    headers = testing.vapi_hmac_headers(BODY, "not-the-hmac-secret")
    assert client.post(URL, data=BODY, headers=headers).status_code == 401
    assert client.post(URL, data=BODY, headers={"X-Vapi-Secret": "s2"}).status_code == 401
    rejected = [r.getMessage() for r in caplog.records if "Rejected" in r.getMessage()]
    assert "signature" in rejected[0] and "No credential was sent" not in rejected[0]
    assert "X-Vapi-Secret does not match" in rejected[1]


def test_verification_runs_before_parsing() -> None:
    app, client, seen = make(CALLTRANSFER_VAPI_SECRET="s1")
    response = client.post(URL, data=b"{not json", headers={"X-Vapi-Secret": "wrong"})
    assert response.status_code == 401


# Units --------------------------------------------------------------------------------------------


def parts(headers: dict[str, str], body: bytes) -> Inbound:
    return Inbound(headers=headers, body=body, method="POST", url="http://localhost/")


def test_matches_any_checks_every_value() -> None:
    assert matches_any(b"b", [b"a", b"b", b"c"])
    assert not matches_any(b"d", [b"a", b"b"])
    assert not matches_any(b"", [])


def test_shared_secret_verifier_unit() -> None:
    verifier = SharedSecretVerifier(["tok"], header="X-API-TOKEN")
    verifier.verify(parts({"X-API-TOKEN": "tok"}, b""))
    with pytest.raises(RequestVerificationFailed, match="X-API-TOKEN"):
        verifier.verify(parts({"Authorization": "Bearer tok"}, b""))


def test_hmac_verifier_with_an_injected_clock() -> None:
    verifier = HmacVerifier(
        ["k"], signature_header="sig", timestamp_header="ts", prefix="sha256=", clock=lambda: 1_000_000.0
    )
    signature = testing.hmac_signature(b"{}", "k", timestamp="1000000", prefix="sha256=")
    verifier.verify(parts({"sig": signature, "ts": "1000000"}, b"{}"))
    verifier.verify(parts({"sig": signature.removeprefix("sha256="), "ts": "1000000"}, b"{}"))
    with pytest.raises(RequestVerificationFailed, match="outside the 300 s window"):
        verifier.verify(
            parts({"sig": testing.hmac_signature(b"{}", "k", timestamp="999000"), "ts": "999000"}, b"{}")
        )


@pytest.mark.parametrize(
    ("config", "key"),
    [
        # A window reading an unsigned timestamp trusts what anyone can rewrite.
        ({"CALLTRANSFER_VAPI_HMAC_PAYLOAD_FORMAT": "{body}"}, "CALLTRANSFER_VAPI_HMAC_PAYLOAD_FORMAT"),
        ({"CALLTRANSFER_VAPI_HMAC_TIMESTAMP_HEADER": ""}, "CALLTRANSFER_VAPI_HMAC_TIMESTAMP_HEADER"),
        ({"CALLTRANSFER_VAPI_HMAC_SECRET": "   "}, "CALLTRANSFER_VAPI_HMAC_SECRET"),
        ({"CALLTRANSFER_VAPI_HMAC_SECRET": ["ok-secret", "\t"]}, "CALLTRANSFER_VAPI_HMAC_SECRET"),
        ({"CALLTRANSFER_VAPI_HMAC_SECRET": "geheim-\u20ac-secret"}, "CALLTRANSFER_VAPI_HMAC_SECRET"),
    ],
)
def test_weak_hmac_configurations_are_refused(config: dict[str, t.Any], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make(**{"CALLTRANSFER_VAPI_HMAC_SECRET": HMAC_SECRET, **config})
    assert info.value.key == key
    # The message names the setting and how to fix it, and never the secret itself.
    assert key in str(info.value) and HMAC_SECRET not in str(info.value)
