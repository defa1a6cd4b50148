"""The flask calltransfer commands, through Flask's CLI runner."""

from __future__ import annotations

import json
import typing as t

import pytest
from flask import Flask

from flask_calltransfer import AssistantDestination
from flask_calltransfer import CallTransfer
from flask_calltransfer import DestinationChain
from flask_calltransfer import NumberDestination
from flask_calltransfer import SipDestination
from flask_calltransfer import TransferRequest
from flask_calltransfer import refuse
from tests.conftest import SECRET
from tests.conftest import TOKEN
from tests.conftest import MakeApp
from tests.recorder import Recorder
from tests.recorder import Reply


def support_line(make_app: MakeApp, **config: t.Any) -> tuple[Flask, CallTransfer]:
    transfers = CallTransfer()
    transfers.add_destination("sales", NumberDestination("+31207948450", message="Connecting you to sales."))
    transfers.add_destination("pbx", SipDestination("sip:desk@pbx.example.com"))

    @transfers.on_request(platform="vapi", when=lambda call: "pbx" in call.text)
    def to_pbx(call: TransferRequest) -> str:
        return "pbx"

    @transfers.on_request
    def by_keyword(call: TransferRequest) -> str | None:
        if "sales" in call.text:
            return "sales"
        if "closed" in call.text:
            refuse("We are closed.")
        return None

    return make_app(transfers, **config)


def invoke(app: Flask, *args: str) -> t.Any:
    return app.test_cli_runner().invoke(args=["calltransfer", *args])


def test_routes(make_app: MakeApp) -> None:
    app, _ = support_line(
        make_app, CALLTRANSFER_SIPGATE_TOKEN=TOKEN, CALLTRANSFER_VAPI_TOOLS=["transferToHuman"]
    )
    result = invoke(app, "routes")
    assert result.exit_code == 0, result.output
    assert "POST /calltransfer/vapi" in result.output and "POST /calltransfer/sipgate" in result.output
    assert (
        "verification: shared secret" in result.output and "transfer tools transferToHuman" in result.output
    )
    assert "to_pbx (platform=vapi; when=" in result.output
    assert "by_keyword" in result.output
    assert "sales: number +31207948450 message='Connecting you to sales.'" in result.output
    assert "pbx: SIP sip:desk@pbx.example.com" in result.output


def test_simulate_vapi_shows_the_destination_and_the_reply(make_app: MakeApp) -> None:
    app, _ = support_line(make_app)
    result = invoke(app, "simulate", "vapi", "I want sales", "--caller", "+31612345678")
    assert result.exit_code == 0, result.output
    assert "Resolved: number +31207948450" in result.output
    reply = json.loads(result.output[result.output.index("{") :])
    assert reply["destination"]["number"] == "+31207948450"


def test_simulate_refusal_and_sipgate(make_app: MakeApp) -> None:
    app, _ = support_line(make_app, CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    result = invoke(app, "simulate", "vapi", "we are closed?")
    assert result.exit_code == 0 and "Refused: We are closed." in result.output
    result = invoke(app, "simulate", "sipgate", "sales please")
    assert result.exit_code == 0, result.output
    assert '"type": "speak"' in result.output  # the announcement comes first
    result = invoke(app, "simulate", "sipgate", "just chatting")
    assert result.exit_code == 0 and "HTTP 204" in result.output
    assert "No transfer now" in result.output


def test_simulate_prints_what_happened_in_order(make_app: MakeApp) -> None:
    transfers = CallTransfer()

    @transfers.on_request
    def crm(call: t.Any) -> str:
        raise LookupError("crm down")

    app, _ = make_app(transfers)
    output = invoke(app, "simulate", "vapi", "hello").output
    assert output.index("Failed (handler): crm down") < output.index("Refused:")


def test_simulate_will_not_make_a_running_server_transfer_unless_told(make_app: MakeApp) -> None:
    app, _ = make_app(CALLTRANSFER_VAPI_TOOLS=["transferToHuman"])
    # Nothing listens on port 9: had the command tried to send, it would say it could not reach it.
    result = invoke(
        app, "simulate", "vapi", "sales", "--tool", "transferToHuman", "--url", "http://127.0.0.1:9"
    )
    assert result.exit_code == 1
    assert "add --live to send it" in result.output and "Could not reach" not in result.output
    result = invoke(
        app, "simulate", "vapi", "sales", "--tool", "transferToHuman", "--url", "http://127.0.0.1:9", "--live"
    )
    assert "Could not reach" in result.output


def test_simulate_tool_calls_are_not_sent(make_app: MakeApp, recorder: Recorder) -> None:
    app, _ = support_line(
        make_app,
        CALLTRANSFER_VOICEDOCK_SECRET="vd",
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="k",
        CALLTRANSFER_VOICEDOCK_API_URL=recorder.url,
    )
    result = invoke(app, "simulate", "voicedock", "--args", '{"x": 1}')
    assert result.exit_code == 0, result.output
    assert "HTTP 200" in result.output and '"tool_call_id"' in result.output
    assert recorder.received == []
    app2, transfers = support_line(make_app, CALLTRANSFER_VAPI_TOOLS=["transferToHuman"])
    result = invoke(app2, "simulate", "vapi", "sales", "--tool", "transferToHuman")
    assert "Would send through vapi's call-control API: number +31207948450" in result.output


def test_simulate_exits_non_zero_when_the_platform_would_reject_the_reply(make_app: MakeApp) -> None:
    transfers = CallTransfer()

    @transfers.on_event("status-update")
    def broken(event: t.Any) -> dict[str, t.Any]:
        return {"destination": {"type": "number"}}  # no number: Vapi would reject it

    app, _ = make_app(transfers)
    result = invoke(app, "simulate", "vapi", "--event", "status-update")
    assert result.exit_code == 1
    assert "Problem: The number destination has no number." in result.output


def test_simulate_against_a_running_server(make_app: MakeApp) -> None:
    from tests.servers import gunicorn

    app, _ = make_app()
    env = {"CALLTRANSFER_VAPI_SECRET": SECRET, "CALLTRANSFER_STORE_URL": "memory://"}
    with gunicorn("example_app:create_app()", env=env, workers=1) as (host, port):
        app.config["CALLTRANSFER_VAPI_SECRET"] = SECRET
        result = invoke(app, "simulate", "vapi", "I want sales", "--url", f"http://{host}:{port}")
    assert result.exit_code == 0, result.output
    assert '"number": "+31207948450"' in result.output


def test_check_passes_a_good_setup(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.add_destination("sales", NumberDestination("+31207948450"))
    transfers.on_request(lambda call: "sales")
    app, _ = make_app(transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN)
    result = invoke(app, "check")
    assert result.exit_code == 0, result.output
    assert "All good: 1 destination(s) checked against vapi, sipgate." in result.output


def test_check_finds_pool_entries_missing_from_the_directory(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.add_destination("support-anna", NumberDestination("+31207948452"))
    desk = transfers.pool("support", ["support-anna", "support-bram", "+31207948453"])
    transfers.on_request(lambda call: desk.next())
    app, _ = make_app(transfers)
    result = invoke(app, "check")
    assert result.exit_code == 1
    assert "DestinationPool 'support' names 'support-bram', which cannot be used" in result.output
    assert "support-anna'," not in result.output and "+31207948453" not in result.output
    transfers.add_destination("support-bram", NumberDestination("+31207948454"))
    assert invoke(app, "check").exit_code == 0


def test_check_finds_broken_destinations(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.add_destination("sales", NumberDestination("+31207948450"))
    transfers.add_destination("pbx", SipDestination("sip:desk@pbx.example.com"))
    transfers.add_destination("hotline", NumberDestination("+31 900 1234567"))  # Dutch premium rate
    transfers.add_destination("named", NumberDestination("+31207948450", caller_id_name="Sales"))
    transfers.add_destination("bot", AssistantDestination("Billing"))
    transfers.on_request(lambda call: "sales")
    app, _ = make_app(
        transfers, CALLTRANSFER_SIPGATE_TOKEN=TOKEN, CALLTRANSFER_VAPI_TOOLS=["transferToHuman"]
    )
    result = invoke(app, "check")
    assert result.exit_code == 1
    assert "Directory entry 'pbx' on sipgate: sipgate cannot transfer to a sip destination." in result.output
    assert "Directory entry 'hotline': +319001234567 is a premium rate number" in result.output
    assert (
        "Directory entry 'named' on vapi: vapi cannot carry the destination's caller_id_name."
        in result.output
    )
    assert (
        "Directory entry 'bot' on vapi: vapi cannot transfer to an assistant (live call control)"
        in result.output
    )
    assert "Directory entry 'sales'" not in result.output


def test_check_finds_configuration_problems(make_app: MakeApp) -> None:
    app, _ = make_app(CALLTRANSFER_VERIFY_REQUESTS=False)
    result = invoke(app, "check")
    assert result.exit_code == 1
    assert "CALLTRANSFER_VERIFY_REQUESTS is False" in result.output
    assert "No @transfers.on_request handler is registered" in result.output
    assert "CALLTRANSFER_VOICEDOCK_TOOLS is empty" in result.output


def test_tool_prints_and_applies(make_app: MakeApp, recorder: Recorder) -> None:
    transfers = CallTransfer()
    transfers.add_destination("sales", NumberDestination("+31207948450", description="Sales"))
    app, _ = make_app(
        transfers,
        CALLTRANSFER_VOICEDOCK_SECRET="vd",
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="k",
        CALLTRANSFER_VOICEDOCK_API_URL=recorder.url,
        CALLTRANSFER_VAPI_API_KEY="vapi-private",
        CALLTRANSFER_VAPI_API_URL=recorder.url,
    )
    result = invoke(app, "tool", "voicedock")
    assert result.exit_code == 0
    assert json.loads(result.output)["destinations"][0]["number"] == "+31207948450"
    recorder.script("/assistants/a-1", Reply(body={"llm_config": {"model": "m"}}))
    result = invoke(app, "tool", "voicedock", "--apply", "a-1")
    assert result.exit_code == 0 and "Installed on assistant a-1." in result.output
    assert recorder.received[-1].json["llm_config"]["tools"][0]["type"] == "transfer_call"
    recorder.script("/tool", Reply(body={"id": "tool-9"}))
    recorder.script("/assistant/a-2", Reply(body={"model": {"provider": "openai", "toolIds": ["t-1"]}}))
    result = invoke(app, "tool", "vapi", "--name", "routeCall", "--apply", "a-2")
    assert result.exit_code == 0, result.output
    created, _, patched = recorder.received[-3:]
    assert created.json["type"] == "transferCall" and created.json["function"]["name"] == "routeCall"
    assert created.headers["Authorization"] == "Bearer vapi-private"
    assert patched.json == {"model": {"provider": "openai", "toolIds": ["t-1", "tool-9"]}}


def test_tool_apply_failure_is_reported(make_app: MakeApp) -> None:
    app, _ = make_app()
    result = invoke(app, "tool", "voicedock", "--apply", "a-1")
    assert result.exit_code == 1
    assert "CALLTRANSFER_VOICEDOCK_API_KEY" in result.output


@pytest.mark.parametrize(
    "args", [("simulate", "sipgate", "x"), ("simulate", "vapi", "--tool", "t", "--args", "{bad")]
)
def test_simulate_usage_errors(make_app: MakeApp, args: tuple[str, ...]) -> None:
    app, _ = make_app()
    result = invoke(app, *args)
    assert result.exit_code != 0
    assert "not enabled" in result.output or "not valid JSON" in result.output


def test_simulate_checks_tool_deliveries_like_the_real_delivery(make_app: MakeApp) -> None:
    transfers = CallTransfer()
    transfers.on_request(lambda call: AssistantDestination("Billing"))
    app, _ = make_app(transfers, CALLTRANSFER_VAPI_TOOLS=["transferToHuman"])
    result = invoke(app, "simulate", "vapi", "x", "--tool", "transferToHuman")
    assert "Would send" not in result.output
    assert "Failed (destination): vapi cannot transfer to an assistant (live call control)" in result.output


def _hunt_group(make_app: MakeApp, recorder: Recorder) -> Flask:
    transfers = CallTransfer()
    transfers.add_destination("anna", NumberDestination("+31207948451"))
    transfers.add_destination("bram", NumberDestination("+31207948452"))
    transfers.on_request(lambda call: DestinationChain(["anna", "bram"]))
    app, _ = make_app(
        transfers,
        CALLTRANSFER_SIPGATE_TOKEN=TOKEN,
        CALLTRANSFER_VOICEDOCK_SECRET="vd-secret",
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="vd-key",
        CALLTRANSFER_VOICEDOCK_API_URL=recorder.url,
    )
    return app


def test_simulate_plays_a_failed_first_attempt(make_app: MakeApp, recorder: Recorder) -> None:
    app = _hunt_group(make_app, recorder)
    result = invoke(app, "simulate", "vapi", "a person please", "--fail", "busy")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines.index("The transfer ends busy:") < next(
        i for i, line in enumerate(lines) if line.startswith("Attempt 2: number +31207948452")
    )
    reply = json.loads(result.output[result.output.index("{") :])
    assert reply["destination"]["number"] == "+31207948452"
    # Both failing: nobody is left, and the chain says so.
    result = invoke(app, "simulate", "vapi", "a person please", "--fail", "busy", "--fail", "no-answer")
    assert "Finished: exhausted after 2 attempt(s)" in result.output

    result = invoke(app, "simulate", "voicedock", "--args", "{}", "--fail", "no-answer")
    assert result.exit_code == 0, result.output
    sent = [line for line in result.output.splitlines() if line.startswith("Would send")]
    assert sent == [
        "Would send through voicedock's call-control API: number +31207948451",
        "Would send through voicedock's call-control API: number +31207948452",
    ]
    assert recorder.received == []  # played in this process: nothing reaches the API

    result = invoke(app, "simulate", "sipgate", "a person please", "--fail", "busy")
    assert "sipgate never reports a failed transfer" in result.output


def test_simulate_fail_needs_this_process(make_app: MakeApp, recorder: Recorder) -> None:
    app = _hunt_group(make_app, recorder)
    result = invoke(app, "simulate", "vapi", "hi", "--fail", "busy", "--url", "http://127.0.0.1:9")
    assert result.exit_code != 0 and "--fail plays in this process only" in result.output


def test_simulate_fail_without_a_chain_says_so(make_app: MakeApp) -> None:
    app, _ = support_line(make_app)
    result = invoke(app, "simulate", "vapi", "I want sales", "--fail", "busy")
    assert result.exit_code == 0, result.output
    assert "no attempt was made" in result.output and "The transfer ends" not in result.output


def test_simulate_plays_each_failure_as_an_event_of_its_own(make_app: MakeApp, recorder: Recorder) -> None:
    transfers = CallTransfer()
    for name, number in (("anna", "+31207948451"), ("bram", "+31207948452"), ("desk", "+31207948400")):
        transfers.add_destination(name, NumberDestination(number))
    transfers.on_request(lambda call: DestinationChain(["anna", "bram", "desk"]))
    app, _ = make_app(
        transfers,
        CALLTRANSFER_VOICEDOCK_SECRET="vd-secret",
        CALLTRANSFER_VOICEDOCK_TOOLS=["transfer_call"],
        CALLTRANSFER_VOICEDOCK_API_KEY="vd-key",
        CALLTRANSFER_VOICEDOCK_API_URL=recorder.url,
    )
    result = invoke(app, "simulate", "voicedock", "--args", "{}", "--fail", "busy", "--fail", "busy")
    sent = [line.rsplit(" ", 1)[-1] for line in result.output.splitlines() if line.startswith("Would send")]
    assert sent == ["+31207948451", "+31207948452", "+31207948400"]
