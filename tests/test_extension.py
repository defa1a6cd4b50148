"""The extension object: init_app, per-app state, configuration validated at start-up."""

from __future__ import annotations

import logging
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import CallTransfer
from flask_calltransfer import ConfigurationError
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import testing
from flask_calltransfer.platforms import installed_platforms
from tests.conftest import SECRET
from tests.conftest import MakeApp
from tests.conftest import Vapi


def test_init_app_registers_state_and_route(make_app: MakeApp) -> None:
    app, transfers = make_app()
    state = app.extensions["calltransfer"]
    assert state.extension is transfers
    assert list(state.platforms) == ["vapi"]
    rules = {
        rule.rule: rule.methods
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("calltransfer")
    }
    assert set(rules) == {"/calltransfer/vapi"}
    assert "POST" in rules["/calltransfer/vapi"] and "GET" not in rules["/calltransfer/vapi"]


def test_defaults_are_written_to_config(make_app: MakeApp) -> None:
    app, _ = make_app()
    assert app.config["CALLTRANSFER_URL_PREFIX"] == "/calltransfer"
    assert app.config["CALLTRANSFER_VERIFY_REQUESTS"] is True
    assert app.config["CALLTRANSFER_VAPI_SECRET_HEADER"] == "X-Vapi-Secret"


def test_double_registration_is_refused(make_app: MakeApp) -> None:
    app, transfers = make_app()
    with pytest.raises(RuntimeError, match="already been registered"):
        transfers.init_app(app)
    with pytest.raises(RuntimeError, match="already been registered"):
        CallTransfer(app)


def test_constructor_with_app() -> None:
    app = Flask(__name__)
    app.config["CALLTRANSFER_VAPI_SECRET"] = SECRET
    transfers = CallTransfer(app)
    assert app.extensions["calltransfer"].extension is transfers


def test_handlers_declared_before_init_app_and_factory_pattern() -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31612345678")

    def create_app() -> Flask:
        app = Flask(__name__)
        app.config["CALLTRANSFER_VAPI_SECRET"] = SECRET
        transfers.init_app(app)
        return app

    first, second = create_app(), create_app()
    for app in (first, second):
        assert Vapi(app.test_client()).ask().json["destination"]["number"] == "+31612345678"


def test_two_apps_share_one_extension_with_their_own_config() -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: None)
    one, two = Flask("one"), Flask("two")
    one.config.update(CALLTRANSFER_VAPI_SECRET="one-secret", CALLTRANSFER_REFUSAL_MESSAGE="One says no.")
    two.config.update(
        CALLTRANSFER_VAPI_SECRET="two-secret",
        CALLTRANSFER_URL_PREFIX="/hooks",
        CALLTRANSFER_FALLBACK="+31612345678",
    )
    transfers.init_app(one)
    transfers.init_app(two)
    assert Vapi(one.test_client(), "one-secret").ask().json == {"error": "One says no."}
    assert Vapi(one.test_client(), "two-secret").ask().status_code == 401
    response = two.test_client().post(
        "/hooks/vapi",
        data=testing.dumps(testing.vapi_transfer_request()),
        headers=testing.vapi_secret_headers("two-secret"),
    )
    assert response.json["destination"]["number"] == "+31612345678"
    assert two.test_client().post("/calltransfer/vapi").status_code == 404


def test_extension_does_not_keep_the_app(make_app: MakeApp) -> None:
    app, transfers = make_app()
    assert all(value is not app for value in vars(transfers).values())


def test_repr_inside_and_outside_app_context(make_app: MakeApp) -> None:
    app, transfers = make_app()
    assert repr(transfers) == "<CallTransfer handlers=0>"
    with app.app_context():
        assert repr(transfers) == "<CallTransfer platforms=[vapi] handlers=0>"


def test_resolve_needs_a_registered_app(make_app: MakeApp) -> None:
    app, _ = make_app()
    other = CallTransfer()
    with app.app_context(), pytest.raises(RuntimeError, match="forget to call 'init_app'"):
        other.resolve(TransferRequest(platform="vapi", event="transfer-destination-request"))


# Configuration ------------------------------------------------------------------------------------


def build(**config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    CallTransfer(app)
    return app


def test_no_platform_enabled_names_the_keys_to_set() -> None:
    with pytest.raises(ConfigurationError) as info:
        build()
    assert "CALLTRANSFER_VAPI_SECRET" in str(info.value)
    assert "CALLTRANSFER_VAPI_HMAC_SECRET" in str(info.value)
    assert info.value.key == "CALLTRANSFER_PLATFORMS"


def test_listed_platform_without_credentials_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_VAPI_SECRET") as info:
        build(CALLTRANSFER_PLATFORMS=["vapi"])
    assert info.value.key == "CALLTRANSFER_VAPI_SECRET"


def test_unknown_platform_is_refused() -> None:
    # Every installed platform is known: the built-in ones and the adapters' distributions.
    known = ", ".join(sorted(installed_platforms()))
    assert "twilio" in known and "jambonz" in known
    with pytest.raises(ConfigurationError, match=f"'skype'.*Known platforms: {known}"):
        build(CALLTRANSFER_VAPI_SECRET=SECRET, CALLTRANSFER_PLATFORMS=["vapi", "skype"])


def test_no_platform_at_all_is_refused_and_the_message_says_how_to_switch_off() -> None:
    with pytest.raises(ConfigurationError, match="No platform is enabled") as info:
        build()
    assert "CALLTRANSFER_PLATFORMS = []" in str(info.value)


def test_an_empty_platform_list_switches_the_extension_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="flask_calltransfer"):
        app = build(CALLTRANSFER_VAPI_SECRET=SECRET, CALLTRANSFER_PLATFORMS=[])
    assert [r.getMessage() for r in caplog.records if "is off" in r.getMessage()] == [
        "Flask-CallTransfer is off: CALLTRANSFER_PLATFORMS is [], so no webhook route is served. List"
        " platforms in CALLTRANSFER_PLATFORMS, or remove the setting and set their credentials, to"
        " switch it on."
    ]
    assert not [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/calltransfer/")]
    assert app.test_client().post("/calltransfer/vapi", data=b"{}").status_code == 404


def test_platforms_as_a_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_PLATFORMS must be a list"):
        build(CALLTRANSFER_VAPI_SECRET=SECRET, CALLTRANSFER_PLATFORMS="vapi")


def test_verification_off_enables_all_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_calltransfer"):
        app = build(CALLTRANSFER_VERIFY_REQUESTS=False)
    assert list(app.extensions["calltransfer"].platforms) == list(installed_platforms())
    assert list(installed_platforms())[:3] == ["vapi", "sipgate", "voicedock"]
    warnings = [r for r in caplog.records if "NOT verified" in r.getMessage()]
    assert len(warnings) == 1
    response = app.test_client().post(
        "/calltransfer/vapi", data=testing.dumps(testing.vapi_transfer_request())
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("CALLTRANSFER_URL_PREFIX", "calltransfer", "must be a path starting with '/'"),
        ("CALLTRANSFER_DEFAULT_REGION", "Netherlands", "two-letter region code"),
        ("CALLTRANSFER_DEFAULT_REGION", "XX", "two-letter region code"),
        ("CALLTRANSFER_VERIFY_REQUESTS", "no", "True or False"),
        ("CALLTRANSFER_REFUSAL_MESSAGE", "", "non-empty string"),
        ("CALLTRANSFER_MAX_BODY_BYTES", 10, "at least 1024"),
        ("CALLTRANSFER_VAPI_SECRET", ["ok", ""], "non-empty string or a list"),
        ("CALLTRANSFER_VAPI_SECRET", 42, "non-empty string or a list"),
        ("CALLTRANSFER_VAPI_HMAC_ALGORITHM", "md5", "sha1, sha256, sha512"),
        ("CALLTRANSFER_VAPI_HMAC_ENCODING", "base32", "base64, hex"),
        ("CALLTRANSFER_VAPI_HMAC_PAYLOAD_FORMAT", "{ts}.{body}", r"\{ts\}, which is not supported"),
        ("CALLTRANSFER_VAPI_HMAC_MAX_AGE", -5, "greater than 0"),
        ("CALLTRANSFER_FALLBACK", "+31 6 1234", "not a usable destination"),
        ("CALLTRANSFER_FALLBACK", "nowhere", "not in the directory"),
        ("CALLTRANSFER_FALLBACK", 42, "directory name, number or SIP URI"),
    ],
)
def test_invalid_settings_name_the_key(key: str, value: t.Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        build(**{"CALLTRANSFER_VAPI_SECRET": SECRET, key: value})
    assert info.value.key == key
    assert key in str(info.value) or info.value.key == key


def test_secret_values_never_appear_in_config_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        build(CALLTRANSFER_VAPI_SECRET=["top-secret-value", 3])
    assert "top-secret-value" not in str(info.value)


def test_fallback_forms(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.add_destination("reception", NumberDestination("+31207948400"))
    app, _ = make_app(transfers, CALLTRANSFER_FALLBACK="reception")
    assert app.extensions["calltransfer"].fallback == NumberDestination("+31207948400")
    app, _ = make_app(CALLTRANSFER_FALLBACK="sip:desk@pbx.example.com")
    assert app.extensions["calltransfer"].fallback == SipDestination("sip:desk@pbx.example.com")
    app, _ = make_app(CALLTRANSFER_FALLBACK="020 794 8400", CALLTRANSFER_DEFAULT_REGION="NL")
    assert app.extensions["calltransfer"].fallback == NumberDestination("+31207948400")


def test_custom_platform_classes(make_app: MakeApp) -> None:
    from flask_calltransfer import VapiPlatform

    class Acme(VapiPlatform):
        name = "acme"

    app, _ = make_app(CallTransfer(platforms=[Acme]))
    assert {rule.rule for rule in app.url_map.iter_rules()} >= {"/calltransfer/acme"}
    assert "vapi" not in app.extensions["calltransfer"].platforms
