"""The neutral value objects: what a platform asked (:class:`TransferRequest`) and where the call
goes (the destinations).

Destinations validate themselves when they are constructed, so a bad number raises
:class:`~flask_calltransfer.InvalidDestination` on the line that wrote it, not deep inside a request.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
import types
import typing as t

from flask import current_app
from flask import has_app_context

from . import messages
from . import phone
from .exceptions import InvalidDestination

#: Vapi's transfer-plan modes, the complete list from its API schema.
TRANSFER_MODES: t.Final[frozenset[str]] = frozenset(
    {
        "blind-transfer",
        "blind-transfer-add-summary-to-sip-header",
        "warm-transfer-say-message",
        "warm-transfer-say-summary",
        "warm-transfer-wait-for-operator-to-speak-first-and-then-say-message",
        "warm-transfer-wait-for-operator-to-speak-first-and-then-say-summary",
        "warm-transfer-twiml",
        "warm-transfer-experimental",
    }
)

#: How a Vapi assistant destination carries the conversation over (Vapi's ``transferMode``).
HISTORY_MODES: t.Final[frozenset[str]] = frozenset(
    {
        "rolling-history",
        "swap-system-message-in-history",
        "swap-system-message-in-history-and-remove-transfer-tool-messages",
        "delete-history",
    }
)

_SIP_URI = re.compile(
    r"^sips?:"
    r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+@)?"  # optional user part
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"  # host name or [IPv6]
    r"(?::[0-9]{1,5})?"  # optional port
    r"(?:;[A-Za-z0-9\-_.!~*'()&=+$%]+)*$"  # optional ;parameters
)
_SIP_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_EXTENSION = re.compile(r"^[0-9]{1,10}$")
_TEMPLATE = re.compile(r"^\{\{\s*[A-Za-z0-9_.]+\s*\}\}$")


def _default_region() -> str | None:
    if has_app_context():
        region = current_app.config.get("CALLTRANSFER_DEFAULT_REGION")
        return region if isinstance(region, str) else None
    return None


def _check_text(value: object, what: str, *, limit: int, allow_empty: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidDestination(messages.attribute_not_text(what, value))
    if not allow_empty and not value.strip():
        raise InvalidDestination(messages.attribute_empty(what))
    if len(value) > limit:
        raise InvalidDestination(messages.attribute_too_long(what, limit))
    return value


def _check_mode(mode: str | None) -> str | None:
    if mode is not None and mode not in TRANSFER_MODES:
        raise InvalidDestination(messages.mode_unknown(mode, sorted(TRANSFER_MODES)))
    return mode


def _check_caller_id(caller_id: str | None, region: str | None) -> str | None:
    if caller_id is None:
        return None
    if not isinstance(caller_id, str):
        raise InvalidDestination(messages.attribute_not_text("caller_id", caller_id))
    if _TEMPLATE.match(caller_id.strip()):
        return caller_id.strip()
    return phone.normalise(caller_id, region)


class Destination:
    """Base class of the destinations a handler can return.

    .. versionadded:: 0.1
    """

    __slots__ = ()

    #: Short name of the destination kind: ``"number"``, ``"sip"`` or ``"assistant"``.
    kind: t.ClassVar[str]
    #: Said to the caller before connecting; ``""`` asks Vapi for a silent transfer.
    message: str | None

    #: The directory name this destination was added under (see
    #: :meth:`~flask_calltransfer.CallTransfer.add_destination`), or ``None``.
    directory_name: str | None

    def describe(self) -> str:
        """A one-line, log-safe description, with numbers masked: ``"billing (number
        +3120****451)"`` for a directory entry, ``"number +3120****451"`` otherwise. Signals'
        receivers, the transfer log, ``flask calltransfer stats`` and the dashboard use it.

        .. versionadded:: 0.2
        """
        target = self._target()
        return f"{self.directory_name} ({target})" if self.directory_name else target

    def _target(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        # Reprs end up in logs and tracebacks: the number is masked there too.
        return f"<{type(self).__name__} {self.describe()}>"


@dataclasses.dataclass(frozen=True, repr=False)
class NumberDestination(Destination):
    """Transfer to a phone number.

    The number is normalised to E.164 through phonenumbers. National formats use ``region``, or the
    app's ``CALLTRANSFER_DEFAULT_REGION`` when built inside an app context.

    .. code-block:: python

        NumberDestination("+31 6 12345678", message="Connecting you to sales.",
                          description="Pricing and quotes")

    :param number: the number to dial.
    :param message: said to the caller before the transfer; ``""`` means silent (Vapi).
    :param caller_id: the caller ID shown to the destination: an E.164 number or a Vapi template
        such as ``"{{customer.number}}"``.
    :param caller_id_name: the caller ID name (sipgate).
    :param extension: 1 to 10 digits dialled after the destination answers.
    :param description: tells the assistant's model when to choose this destination.
    :param mode: one of Vapi's transfer-plan modes, such as ``"warm-transfer-say-summary"``.
    :param e164: ``False`` skips E.164 normalisation and allows Vapi's ``^\\+?[a-zA-Z0-9]+$`` form,
        for SIP trunk short codes (Vapi's ``numberE164CheckEnabled: false``).
    :param region: region code for national numbers; defaults to ``CALLTRANSFER_DEFAULT_REGION``.
    :raises InvalidDestination: if any argument is invalid.

    .. versionadded:: 0.1
    """

    kind: t.ClassVar[str] = "number"

    number: str
    message: str | None = dataclasses.field(default=None, kw_only=True)
    caller_id: str | None = dataclasses.field(default=None, kw_only=True)
    caller_id_name: str | None = dataclasses.field(default=None, kw_only=True)
    extension: str | None = dataclasses.field(default=None, kw_only=True)
    description: str | None = dataclasses.field(default=None, kw_only=True)
    mode: str | None = dataclasses.field(default=None, kw_only=True)
    e164: bool = dataclasses.field(default=True, kw_only=True)
    directory_name: str | None = dataclasses.field(default=None, kw_only=True, compare=False)
    region: dataclasses.InitVar[str | None] = dataclasses.field(default=None, kw_only=True)

    def __post_init__(self, region: str | None) -> None:
        region = region or _default_region()
        if self.e164:
            number = phone.normalise(self.number, region)
        else:
            number = phone.check_non_e164(self.number)
        object.__setattr__(self, "number", number)
        object.__setattr__(self, "caller_id", _check_caller_id(self.caller_id, region))
        if self.caller_id is not None and len(self.caller_id) > 40:
            raise InvalidDestination(messages.attribute_too_long("caller_id", 40))
        _check_text(self.message, "message", limit=1000, allow_empty=True)
        _check_text(self.caller_id_name, "caller_id_name", limit=64)
        _check_text(self.description, "description", limit=1000)
        if self.extension is not None and (
            not isinstance(self.extension, str) or not _EXTENSION.match(self.extension)
        ):
            raise InvalidDestination(messages.extension_invalid(self.extension))
        _check_mode(self.mode)

    def _target(self) -> str:
        return f"number {phone.mask(self.number)}"


@dataclasses.dataclass(frozen=True, repr=False)
class SipDestination(Destination):
    """Transfer to a SIP URI, optionally with custom SIP headers.

    .. code-block:: python

        SipDestination("sip:vip@pbx.example.com", headers={"X-Account": "4711"})

    :param uri: a ``sip:`` or ``sips:`` URI.
    :param message: said to the caller before the transfer.
    :param headers: SIP headers added to the transfer; names must be SIP header tokens and values
        must not contain line breaks.
    :param caller_id: the caller ID, used by Vapi only when the SIP verb is ``dial``.
    :param mode: one of Vapi's transfer-plan modes.
    :raises InvalidDestination: if any argument is invalid.

    .. versionadded:: 0.1
    """

    kind: t.ClassVar[str] = "sip"

    uri: str
    message: str | None = dataclasses.field(default=None, kw_only=True)
    headers: t.Mapping[str, str] | None = dataclasses.field(default=None, kw_only=True)
    caller_id: str | None = dataclasses.field(default=None, kw_only=True)
    mode: str | None = dataclasses.field(default=None, kw_only=True)
    directory_name: str | None = dataclasses.field(default=None, kw_only=True, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not _SIP_URI.match(self.uri.strip()):
            raise InvalidDestination(messages.sip_uri_invalid(self.uri))
        object.__setattr__(self, "uri", self.uri.strip())
        if self.headers is not None:
            if not isinstance(self.headers, t.Mapping):
                raise InvalidDestination(messages.sip_headers_not_mapping(self.headers))
            for name, value in self.headers.items():
                if not isinstance(name, str) or not _SIP_TOKEN.match(name):
                    raise InvalidDestination(messages.sip_header_name_invalid(name))
                if not isinstance(value, str) or "\r" in value or "\n" in value:
                    raise InvalidDestination(messages.sip_header_value_invalid(name))
            # A read-only copy: the destination must not change after validation.
            object.__setattr__(self, "headers", types.MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "caller_id", _check_caller_id(self.caller_id, _default_region()))
        _check_text(self.message, "message", limit=1000, allow_empty=True)
        _check_mode(self.mode)

    def __hash__(self) -> int:
        headers = tuple(sorted(self.headers.items())) if self.headers else None
        return hash((self.uri, self.message, headers, self.caller_id, self.mode))

    def _target(self) -> str:
        return f"SIP {phone.mask(self.uri)}"


@dataclasses.dataclass(frozen=True, repr=False)
class AssistantDestination(Destination):
    """Hand the call to another Vapi assistant (a squad member). Vapi destination replies only.

    :param name: the assistant's name.
    :param message: said to the caller before the hand-over.
    :param history: how the conversation carries over, one of Vapi's ``transferMode`` values
        (``"rolling-history"``, ``"swap-system-message-in-history"``,
        ``"swap-system-message-in-history-and-remove-transfer-tool-messages"``, ``"delete-history"``).
    :raises InvalidDestination: if any argument is invalid.

    .. versionadded:: 0.1
    """

    kind: t.ClassVar[str] = "assistant"

    name: str
    message: str | None = dataclasses.field(default=None, kw_only=True)
    history: str | None = dataclasses.field(default=None, kw_only=True)
    directory_name: str | None = dataclasses.field(default=None, kw_only=True, compare=False)

    def __post_init__(self) -> None:
        _check_text(self.name, "name", limit=200)
        if self.name is None:
            raise InvalidDestination(messages.attribute_empty("name"))
        _check_text(self.message, "message", limit=1000, allow_empty=True)
        if self.history is not None and self.history not in HISTORY_MODES:
            raise InvalidDestination(messages.history_unknown(self.history, sorted(HISTORY_MODES)))

    def _target(self) -> str:
        return f"assistant {self.name!r}"


#: Anything a handler may return: a destination, a string shorthand, or ``None`` for no opinion.
HandlerResult = Destination | str | None


class Conversation:
    """A lazy view of the conversation in a payload. Platforms subclass it.

    :class:`TransferRequest` calls each method at most once, on first access, so a platform can keep
    the raw payload and do the work only when a handler asks.

    .. versionadded:: 0.1
    """

    def text(self) -> str:
        """The caller's latest utterance, ``""`` when there is none."""
        return ""

    def transcript(self) -> str:
        """The conversation so far as one string, ``""`` when there is none."""
        return ""

    def messages(self) -> list[dict[str, str]]:
        """The conversation as ``{"role", "content"}`` dicts."""
        return []


_NO_CONVERSATION = Conversation()


class _Unset:
    """Marks an argument that was not given, where ``None`` is a meaningful value."""


_UNSET = _Unset()


class TransferRequest:
    """One platform's question "where should this call go?", in a platform-neutral shape.

    Handlers receive it as their only argument. It is immutable. Fields derived from the
    conversation (``text``, ``transcript``, ``messages``) are computed on first access, because most
    handlers never read them and a long call's history is large.

    .. versionadded:: 0.1
    """

    #: The platform's name, such as ``"vapi"``.
    platform: str
    #: The event that asked, such as ``"transfer-destination-request"``.
    event: str
    #: The platform's call id (sipgate: the session id).
    call_id: str | None
    #: The assistant handling the call, when the platform says.
    assistant_id: str | None
    #: Tool-call arguments, ``{}`` for other events.
    arguments: dict[str, t.Any]
    #: Metadata the platform passes along with the call.
    metadata: dict[str, t.Any]
    #: The unwrapped payload, for fields this object does not model.
    raw: dict[str, t.Any]
    #: The id of the tool call that asked, for tool-call requests; ``None`` otherwise.
    tool_call_id: str | None
    #: The name of the tool that was called, for tool-call requests; ``None`` otherwise.
    tool_name: str | None

    def __init__(
        self,
        *,
        platform: str,
        event: str,
        call_id: str | None = None,
        caller: str | None = None,
        called: str | None = None,
        assistant_id: str | None = None,
        arguments: dict[str, t.Any] | None = None,
        metadata: dict[str, t.Any] | None = None,
        raw: dict[str, t.Any] | None = None,
        text: str | None = None,
        transcript: str | None = None,
        messages: list[dict[str, str]] | None = None,
        conversation: Conversation | None = None,
        region: str | None | _Unset = _UNSET,
        tool_call_id: str | None = None,
        tool_name: str | None = None,
    ) -> None:
        given = {"text": text, "transcript": transcript, "messages": messages}
        values: dict[str, t.Any] = {
            "platform": platform,
            "event": event,
            "call_id": call_id,
            "_caller": caller,
            "_called": called,
            "assistant_id": assistant_id,
            "arguments": arguments if arguments is not None else {},
            "metadata": metadata if metadata is not None else {},
            "raw": raw if raw is not None else {},
            "tool_call_id": tool_call_id,
            "tool_name": tool_name,
            # When the request arrived, for deadlines that count from then.
            "_received": time.monotonic(),
            "_conversation": conversation if conversation is not None else _NO_CONVERSATION,
            # Kept so numbers normalise the same way after the request, outside the app context.
            "_region": _default_region() if isinstance(region, _Unset) else region,
        }
        values.update({k: v for k, v in given.items() if v is not None})
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"TransferRequest is immutable; cannot set {name!r}.")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"TransferRequest is immutable; cannot delete {name!r}.")

    @property
    def received(self) -> float:
        """When the request arrived, on the :func:`time.monotonic` clock."""
        return t.cast(float, self.__dict__["_received"])

    def _source(self) -> Conversation:
        return t.cast(Conversation, self.__dict__["_conversation"])

    @functools.cached_property
    def caller(self) -> str | None:
        """Who placed the call: E.164 when it parses, else the raw string, else ``None``."""
        return phone.to_e164_or_raw(self.__dict__["_caller"], self.__dict__["_region"])

    @functools.cached_property
    def called(self) -> str | None:
        """The number that was called: E.164 when it parses, else the raw string, else ``None``."""
        return phone.to_e164_or_raw(self.__dict__["_called"], self.__dict__["_region"])

    @functools.cached_property
    def text(self) -> str:
        """The caller's latest utterance, ``""`` when there is none."""
        return self._source().text()

    @functools.cached_property
    def transcript(self) -> str:
        """The conversation so far as one string, ``""`` when the platform sends none."""
        return self._source().transcript()

    @functools.cached_property
    def messages(self) -> list[dict[str, str]]:
        """The conversation as ``{"role", "content"}`` dicts, roles ``user``, ``assistant``,
        ``system`` and ``tool``."""
        return self._source().messages()

    def __repr__(self) -> str:
        return (
            f"<TransferRequest {self.platform} {self.event} call={self.call_id!r}"
            f" caller={phone.mask(self.caller)}>"
        )


@dataclasses.dataclass(frozen=True)
class PlatformEvent:
    """Any other event that arrives on a platform's webhook URL, given to ``on_event`` handlers.

    .. versionadded:: 0.1
    """

    #: The platform's name, such as ``"vapi"``.
    platform: str
    #: The event type, such as ``"assistant-request"``.
    type: str
    #: The platform's call id, when the payload carries one.
    call_id: str | None
    #: The unwrapped payload.
    payload: dict[str, t.Any]
