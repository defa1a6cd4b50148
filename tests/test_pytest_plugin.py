"""The pytest plugin, tested the way a user's project uses it: a test file that uses only its
fixtures, against the example app, run by pytester."""

from __future__ import annotations

import pytest

CONFTEST = """
import pytest

import example_app


@pytest.fixture
def app():
    return example_app.create_app(
        {
            "TESTING": True,
            "CALLTRANSFER_VAPI_SECRET": "user-secret",
            "CALLTRANSFER_VAPI_TOOLS": ["transferToHuman"],
            "CALLTRANSFER_SIPGATE_TOKEN": "user-token",
            "CALLTRANSFER_VOICEDOCK_SECRET": "user-voicedock-secret",
            "CALLTRANSFER_VOICEDOCK_TOOLS": ["transfer_call"],
            "CALLTRANSFER_VOICEDOCK_API_KEY": "user-api-key",
            "CALLTRANSFER_STORE_URL": "memory://",
        }
    )
"""

USER_TESTS = """
def test_sales_reaches_sales(calltransfer_vapi, calltransfer_signals):
    response = calltransfer_vapi.transfer_request("I'd like a quote")
    assert response.json["destination"]["number"] == "+31207948450"
    assert calltransfer_signals.one("transfer-resolved")["handler"].__name__ == "by_keyword"


def test_vip_callers_reach_the_pbx(calltransfer_vapi):
    response = calltransfer_vapi.transfer_request("hello", caller="+31612345678")
    assert response.json["destination"]["sipHeaders"] == {"X-Account": "ACME-0042"}


def test_sipgate_announces_then_transfers(calltransfer_sipgate):
    assert calltransfer_sipgate.user_speak("billing", session_id="s-1").json["type"] == "speak"
    assert calltransfer_sipgate.event("assistant_speech_ended", session_id="s-1").json["type"] == "transfer"


def test_tool_calls_are_recorded_not_sent(
    calltransfer_voicedock, calltransfer_vapi, calltransfer_deliveries
):
    reply = calltransfer_voicedock.tool_call("transfer_call", {"department": "sales"})
    assert reply.json["results"][0]["result"] == {"status": "transferring"}
    calltransfer_vapi.tool_call("transferToHuman", {"department": "billing"})
    numbers = [destination.number for _, destination in calltransfer_deliveries]
    assert numbers == ["+31207948450", "+31207948451"]


def test_unsigned_requests_are_refused(calltransfer_vapi):
    response = calltransfer_vapi.post({"message": {"type": "status-update"}}, headers={})
    assert response.status_code == 401
"""


@pytest.fixture
def user_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_routing=USER_TESTS)
    return pytester


def test_a_user_test_file_passes_with_only_the_plugin_fixtures(user_project: pytest.Pytester) -> None:
    result = user_project.runpytest("-q")
    result.assert_outcomes(passed=5)


def test_a_routing_bug_fails_the_user_test(user_project: pytest.Pytester) -> None:
    user_project.makepyfile(
        test_broken="""
def test_billing_goes_to_sales(calltransfer_vapi):
    response = calltransfer_vapi.transfer_request("billing please")
    assert response.json["destination"]["number"] == "+31207948450"
"""
    )
    result = user_project.runpytest("-q", "test_broken.py")
    result.assert_outcomes(failed=1)
