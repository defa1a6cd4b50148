"""The HTTP glue: bad bodies, sizes, methods, and the host app's own error pages."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import BadRequest

from flask_calltransfer import CallTransfer
from flask_calltransfer import PlatformEvent
from flask_calltransfer import TransferRequest
from flask_calltransfer import VapiPlatform
from flask_calltransfer import testing
from flask_calltransfer.platforms import Inbound
from tests.conftest import SECRET
from tests.conftest import MakeApp
from tests.conftest import Vapi

URL = "/calltransfer/vapi"


def post(client: FlaskClient, data: bytes, **headers: str) -> t.Any:
    return client.post(URL, data=data, headers={"X-Vapi-Secret": SECRET, **headers})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"{not json", "not valid JSON"),
        (b'{"message": {"type": "transfer-destination-request"}', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"transfer-destination-request"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"\xff\xfe\xfd{}", "not valid JSON"),
        (b'{"message": {"type": "\xc3\x28"}}', "not valid JSON"),
        (b'{"type": "transfer-destination-request", "x": NaN}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
    ],
)
def test_bad_bodies_are_400_with_a_json_error(
    app: Flask, client: FlaskClient, body: bytes, message: str
) -> None:
    with testing.record_signals(app) as heard:
        response = post(client, body, **{"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert response.json["code"] == 400
    assert response.json["status"] == "Bad Request"
    assert message in response.json["message"]
    assert response.json["errors"]
    rejected = heard.one("request-rejected")
    assert (rejected["platform"], rejected["status"]) == ("vapi", 400)


def test_deep_but_reasonable_nesting_is_fine(transfers: CallTransfer, vapi: Vapi) -> None:
    transfers.on_request(lambda call: "+31612345678")
    body = testing.vapi_transfer_request()
    nested: t.Any = "leaf"
    for _ in range(200):
        nested = {"n": [nested]}
    body["message"]["assistant"]["model"] = nested
    assert vapi.post(body).status_code == 200


def test_any_content_type_is_read_as_json(transfers: CallTransfer, client: FlaskClient) -> None:
    transfers.on_request(lambda call: "+31612345678")
    body = testing.dumps(testing.vapi_transfer_request())
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-8",
    ):
        response = post(client, body, **{"Content-Type": content_type})
        assert response.status_code == 200, content_type


def test_body_over_the_limit_is_413(make_app: MakeApp) -> None:
    app, transfers = make_app(CALLTRANSFER_MAX_BODY_BYTES=4096)
    transfers.on_request(lambda call: "+31612345678")
    client = app.test_client()
    small = testing.dumps(testing.vapi_transfer_request())
    assert post(client, small).status_code == 200
    big = testing.dumps(testing.vapi_transfer_request(text="x" * 5000))
    with testing.record_signals(app) as heard:
        response = post(client, big)
    assert response.status_code == 413
    assert response.json["code"] == 413
    assert "CALLTRANSFER_MAX_BODY_BYTES" in response.json["message"]
    assert heard.one("request-rejected")["status"] == 413


def test_only_post_is_served(client: FlaskClient) -> None:
    assert client.get(URL).status_code == 405
    assert client.put(URL).status_code == 405


def test_disabled_platforms_are_not_routed(client: FlaskClient) -> None:
    assert client.post("/calltransfer/sipgate", data=b"{}").status_code == 404


def test_host_error_pages_are_untouched(make_app: MakeApp) -> None:
    app, _ = make_app()

    @app.errorhandler(400)
    def host_400(error: Exception) -> tuple[str, int]:
        return "host page", 400

    @app.route("/form", methods=["POST"])
    def form() -> str:
        raise BadRequest()

    client = app.test_client()
    assert client.post("/form").data == b"host page"
    assert post(client, b"{oops").json["code"] == 400


class BrokenPlatform(VapiPlatform):
    """A third-party adapter with a bug in parse."""

    name = "broken"

    def parse(self, payload: dict[str, t.Any], inbound: Inbound) -> TransferRequest | PlatformEvent:
        raise KeyError("bug")


def test_an_adapter_bug_still_gives_the_platform_a_valid_answer(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = make_app(CallTransfer(platforms=[BrokenPlatform]), CALLTRANSFER_VAPI_SECRET=SECRET)
    response = app.test_client().post(
        "/calltransfer/broken",
        data=testing.dumps(testing.vapi_transfer_request()),
        headers={"X-Vapi-Secret": SECRET},
    )
    assert response.status_code == 200
    assert response.json == {"error": "I'm sorry, I can't transfer your call right now."}
    assert any(r.exc_info for r in caplog.records)


def test_url_prefix(make_app: MakeApp) -> None:
    app, transfers = make_app(CALLTRANSFER_URL_PREFIX="/hooks/voice/")
    transfers.on_request(lambda call: "+31612345678")
    client = app.test_client()
    body = testing.dumps(testing.vapi_transfer_request())
    assert client.post("/hooks/voice/vapi", data=body, headers={"X-Vapi-Secret": SECRET}).status_code == 200


def test_root_prefix(make_app: MakeApp) -> None:
    app, transfers = make_app(CALLTRANSFER_URL_PREFIX="/")
    transfers.on_request(lambda call: "+31612345678")
    body = testing.dumps(testing.vapi_transfer_request())
    assert app.test_client().post("/vapi", data=body, headers={"X-Vapi-Secret": SECRET}).status_code == 200


def test_a_lone_surrogate_in_the_callers_text_still_gets_valid_json(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    # JSON may escape half a surrogate pair; UTF-8 cannot encode it. Repeated back in a refusal, it
    # must not turn the answer into an internal error.
    app, transfers = make_app(CALLTRANSFER_SIPGATE_TOKEN=SECRET)

    @transfers.on_request
    def echo(call: TransferRequest) -> None:
        from flask_calltransfer import refuse

        refuse(f"You said {call.text}")

    body = testing.dumps(testing.sipgate_event("user_speak", text="x")).replace(b'"x"', b'"\\ud83d"')
    with caplog.at_level("ERROR", logger="flask_calltransfer"):
        response = app.test_client().post(
            "/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(SECRET)
        )
    assert response.status_code == 200
    assert response.get_data().endswith(b'"text":"You said \\ud83d"}')
    assert not caplog.records


def test_the_decision_can_go_to_the_wsgi_environ_instead_of_a_log_line(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    from flask import request

    from flask_calltransfer import ConfigurationError

    app, transfers = make_app(CALLTRANSFER_DECISION_LOG="environ", CALLTRANSFER_SIPGATE_TOKEN=SECRET)
    seen: list[str] = []
    app.after_request(
        lambda response: seen.append(request.environ.get("flask_calltransfer.decision", "-")) or response
    )
    transfers.on_request(
        lambda call: (
            None if "later" in call.text else "+31 20 794 8450" if "sales" in call.text else call.caller
        )
    )
    client = app.test_client()
    with caplog.at_level("INFO", logger="flask_calltransfer"):
        body = testing.dumps(
            testing.vapi_transfer_request(text="sales", caller="+31687654321", call_id="c-1")
        )
        client.post("/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(SECRET))
        # The platform's call id is the caller's number here: it is masked too.
        body = testing.dumps(
            testing.vapi_transfer_request(text="me", caller="+31687654321", call_id="+31687654321")
        )
        client.post("/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(SECRET))
        body = testing.dumps(testing.sipgate_event("user_speak", text="later", session_id="s-1"))
        client.post("/calltransfer/sipgate", data=body, headers=testing.sipgate_headers(SECRET))
        client.post("/calltransfer/vapi", data=b"{}", headers=testing.vapi_secret_headers(SECRET))
    assert seen[0].startswith("Transfer c-1 on vapi resolved to number +3120****450 by test_the_decision")
    assert seen[1].startswith("Transfer +3168****321 on vapi resolved to number +3168****321 by ")
    assert seen[2] == "Transfer s-1 on sipgate deferred: no handler answered."
    assert seen[3] == "-"
    assert "31687654321" not in "".join(seen)
    assert not [record for record in caplog.records if record.levelname == "INFO"]
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_DECISION_LOG"):
        make_app(CALLTRANSFER_DECISION_LOG="stdout")
