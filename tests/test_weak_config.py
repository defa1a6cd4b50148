"""Weak configurations are refused at init_app, with the setting named and the fix said."""

from __future__ import annotations

import pytest

from flask_calltransfer import ConfigurationError
from tests.conftest import MakeApp


def test_a_short_dashboard_token_is_refused(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="CALLTRANSFER_DASHBOARD_TOKEN is shorter than 16") as info:
        make_app(CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN="short-token")
    assert info.value.key == "CALLTRANSFER_DASHBOARD_TOKEN"
    with pytest.raises(ConfigurationError, match="empty or blank"):
        make_app(CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_DASHBOARD_TOKEN=" " * 20)


def test_hashed_callers_need_a_key(make_app: MakeApp) -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY or CALLTRANSFER_LOG_HASH_KEY") as info:
        make_app(CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_LOG_CALLERS="hash")
    assert info.value.key == "CALLTRANSFER_LOG_CALLERS"
    app, _ = make_app(
        CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_LOG_CALLERS="hash", CALLTRANSFER_LOG_HASH_KEY="k" * 32
    )
    log = app.extensions["calltransfer"].transfer_log
    assert log.caller("+31612345678").startswith("h:")
    other, _ = make_app(CALLTRANSFER_LOG_TRANSFERS=True, CALLTRANSFER_LOG_CALLERS="hash", SECRET_KEY="s" * 32)
    # A different key gives a different hash: the number cannot be found by trying them all.
    assert other.extensions["calltransfer"].transfer_log.caller("+31612345678") != log.caller("+31612345678")


@pytest.mark.parametrize("key", ["CALLTRANSFER_VAPI_SECRET", "CALLTRANSFER_SIPGATE_TOKEN"])
@pytest.mark.parametrize("value", ["  ", ["fine-secret-value", " "], "caf\u00e9-\u2603-secret"])
def test_blank_and_non_latin1_secrets_are_refused(make_app: MakeApp, key: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(**{key: value})
    assert info.value.key == key


@pytest.mark.parametrize(
    "key", ["CALLTRANSFER_BODY_TIMEOUT", "CALLTRANSFER_STORE_COOLDOWN", "CALLTRANSFER_STORE_TIMEOUT"]
)
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_and_infinity_are_refused(make_app: MakeApp, key: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match="a finite number") as info:
        make_app(**{key: value})
    assert info.value.key == key
