"""FastLoader and FastDumper give exactly what marshmallow gives, for any input."""

from __future__ import annotations

import typing as t

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import post_load

from flask_calltransfer import testing
from flask_calltransfer.platforms import sipgate
from flask_calltransfer.platforms import vapi
from flask_calltransfer.platforms import voicedock
from flask_calltransfer.schemas import FastDumper
from flask_calltransfer.schemas import FastLoader

LOADERS = {
    "vapi request": vapi._TransferRequestSchema(),
    "vapi tool calls": vapi._ToolCallsSchema(),
    "vapi event": vapi._EventSchema(),
    "sipgate known": sipgate._KnownEvent(),
    "sipgate unknown": sipgate._UnknownEvent(),
    "voicedock": voicedock._Envelope(),
}

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def _mutate(payload: dict[str, t.Any], data: st.DataObject) -> dict[str, t.Any]:
    """Replace a few values anywhere in the payload with random JSON."""

    def walk(node: t.Any, depth: int) -> t.Any:
        if isinstance(node, dict):
            return {
                k: (data.draw(values) if data.draw(st.integers(0, 9)) == 0 else walk(v, depth + 1))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node[:3]]
        return node

    return t.cast(dict[str, t.Any], walk(payload, 0))


def _outcome(load: t.Callable[[t.Any], t.Any], payload: t.Any) -> t.Any:
    try:
        return ("ok", load(payload))
    except ValidationError as exc:
        return ("error", exc.messages)


PAYLOADS = [
    lambda: testing.vapi_transfer_request()["message"],
    lambda: testing.vapi_tool_calls("transferToHuman", {"a": 1})["message"],
    lambda: testing.sipgate_event("user_speak", text="hi", barged_in=True),
    lambda: testing.voicedock_tool_calls("transfer_call", {"a": "b"}),
]


@pytest.mark.parametrize("name", list(LOADERS))
@given(data=st.data())
def test_fast_loader_matches_marshmallow(name: str, data: st.DataObject) -> None:
    schema = LOADERS[name]
    loader = FastLoader(schema)
    assert loader.plan is not None
    payload = _mutate(data.draw(st.sampled_from(PAYLOADS))(), data)
    assert _outcome(loader.load, payload) == _outcome(schema.load, payload)


def test_schemas_with_hooks_or_defaults_are_not_compiled() -> None:
    class WithHook(Schema):
        a = fields.String()

        @post_load
        def upper(self, data: dict[str, t.Any], **kwargs: t.Any) -> dict[str, t.Any]:
            return {"a": data["a"].upper()}

    class WithDefault(Schema):
        a = fields.String(load_default="x")

    for schema in (WithHook(), WithDefault()):
        loader = FastLoader(schema)
        assert loader.plan is None
    assert FastLoader(WithHook()).load({"a": "b"}) == {"a": "B"}
    assert FastLoader(WithDefault()).load({}) == {"a": "x"}


@given(
    st.dictionaries(
        st.sampled_from(
            ["session_id", "target_phone_number", "caller_id_name", "caller_id_number", "text", "x"]
        ),
        st.none() | st.text(max_size=5) | st.integers(),
    )
)
def test_fast_dumper_matches_marshmallow(obj: dict[str, t.Any]) -> None:
    for schema in (sipgate._TransferAction(), sipgate._SpeakAction()):
        assert FastDumper(schema).dump(obj) == schema.dump(obj)
