"""The neutral value objects: what a platform asked (:class:`TransferRequest`) and where the call
goes (the destinations).

Destinations validate themselves when they are constructed, so a bad number raises
:class:`~flask_calltransfer.InvalidDestination` on the line that wrote it, not deep inside a request.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import time
import types
import typing as t
import urllib.parse
from xml.etree import ElementTree

from flask import current_app
from flask import has_app_context

from . import messages
from . import phone
from .callbacks import Callback
from .exceptions import InvalidDestination
from .handoff import Handoff

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
# Used with fullmatch: "$" would also match before a trailing line break.
_SIP_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_EXTENSION = re.compile(r"^[0-9]{1,10}$")
_T = t.TypeVar("_T")
_TEMPLATE = re.compile(r"^\{\{\s*[A-Za-z0-9_.]+\s*\}\}$")

#: ``caller_id=CALLER`` presents the caller's own number to the person who answers. Vapi gets its
#: ``{{customer.number}}`` template; Twilio, jambonz and sipgate the number from the webhook.
CALLER: t.Final = "{{caller}}"


def _default_region() -> str | None:
    if has_app_context():
        region = current_app.config.get("CALLTRANSFER_DEFAULT_REGION")
        return region if isinstance(region, str) else None
    return None


# Control characters, tab excepted: a SIP header's value cannot carry them (RFC 3261 §25.1).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _check_text(
    value: object,
    what: str,
    *,
    limit: int | None,
    allow_empty: bool = False,
    whose: str = "destination",
    one_line: bool = False,
) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidDestination(messages.attribute_not_text(what, value, whose=whose))
    if not allow_empty and not value.strip():
        raise InvalidDestination(messages.attribute_empty(what, whose=whose))
    if limit is not None and len(value) > limit:
        raise InvalidDestination(messages.attribute_too_long(what, limit, whose=whose))
    if one_line and _CONTROL.search(value):
        raise InvalidDestination(messages.attribute_control_characters(what, whose=whose))
    return value


def _check_mode(mode: object) -> None:
    if not isinstance(mode, str) or mode not in TRANSFER_MODES:
        raise InvalidDestination(messages.mode_unknown(mode, sorted(TRANSFER_MODES)))


def _check_caller_id(caller_id: str | None, region: str | None) -> str | None:
    if caller_id is None:
        return None
    if not isinstance(caller_id, str):
        raise InvalidDestination(messages.attribute_not_text("caller_id", caller_id))
    if _TEMPLATE.match(caller_id.strip()):
        return caller_id.strip()
    return phone.normalise(caller_id, region)


# Vapi transfer plans ------------------------------------------------------------------------------
# Every rule below is Vapi's TransferPlan, TransferFallbackPlan and SummaryPlan as platforms.md §1.4
# lists them (the OpenAPI file), with the modes each field is "used only" in taken from the same
# schema's field descriptions, which the Python SDK's types repeat word for word.

_BLIND = "blind-transfer"
_SIP_HEADER_SUMMARY = "blind-transfer-add-summary-to-sip-header"
#: The mode in which Vapi writes its own summary into a SIP header.
SIP_HEADER_SUMMARY: t.Final = _SIP_HEADER_SUMMARY
_SAY_MESSAGE = "warm-transfer-say-message"
_SAY_SUMMARY = "warm-transfer-say-summary"
_WAIT_MESSAGE = "warm-transfer-wait-for-operator-to-speak-first-and-then-say-message"
_WAIT_SUMMARY = "warm-transfer-wait-for-operator-to-speak-first-and-then-say-summary"
_TWIML = "warm-transfer-twiml"
_EXPERIMENTAL = "warm-transfer-experimental"

#: The SIP verbs of ``TransferPlan.sipVerb``.
SIP_VERBS: t.Final[frozenset[str]] = frozenset({"refer", "bye", "dial"})

#: The modes each plan field is used in. A field not named here is used in every mode.
PLAN_FIELD_MODES: t.Final[t.Mapping[str, frozenset[str]]] = types.MappingProxyType(
    {
        # "Said to the destination party": the message modes, the SIP-header blind transfer and
        # the experimental warm transfer.
        "message": frozenset({_SIP_HEADER_SUMMARY, _SAY_MESSAGE, _WAIT_MESSAGE, _EXPERIMENTAL}),
        # Seconds to wait for the operator to speak: the two wait-for-operator modes.
        "timeout": frozenset({_WAIT_MESSAGE, _WAIT_SUMMARY}),
        "hold_audio_url": frozenset({_EXPERIMENTAL}),
        "transfer_complete_audio_url": frozenset({_EXPERIMENTAL}),
        "context_engineering_plan": frozenset({_EXPERIMENTAL}),
        "twiml": frozenset({_TWIML}),
        # The summary modes, the SIP-header blind transfer and the experimental warm transfer.
        "summary_plan": frozenset({_SIP_HEADER_SUMMARY, _SAY_SUMMARY, _WAIT_SUMMARY, _EXPERIMENTAL}),
        # The experimental warm transfer, and SIP blind transfers when the organisation has
        # transfer outcome detection on. Whether a number transferred over a SIP trunk counts as a
        # "SIP" blind transfer is not said, so both blind modes accept it on any destination.
        "fallback_plan": frozenset({_BLIND, _SIP_HEADER_SUMMARY, _EXPERIMENTAL}),
    }
)

#: The only TwiML verbs Vapi runs in ``warm-transfer-twiml`` (``Response`` is allowed too: the
#: reference does not say whether the instructions may come wrapped in one).
_TWIML_VERBS = frozenset({"Play", "Say", "Gather", "Hangup", "Pause"})
_TWIML_LIMIT = 4096


def _check_seconds(value: object, field: str, low: int, high: int, *, whose: str = "transfer plan") -> None:
    if value is None:
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(t.cast(float, value)) or not low <= t.cast(float, value) <= high:
        raise InvalidDestination(messages.plan_seconds(whose, field, value, low, high))


def _check_flag(value: object, field: str, *, whose: str = "transfer plan") -> None:
    if value is not None and not isinstance(value, bool):
        raise InvalidDestination(messages.plan_flag(whose, field, value))


def _check_audio_url(value: object, field: str) -> None:
    if value is None:
        return
    # Vapi fetches the file itself; whether it is MP3 or WAV cannot be told from the URL.
    text = value if isinstance(value, str) else ""
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("http", "https") or not url.netloc or any(c.isspace() for c in text):
        raise InvalidDestination(messages.plan_audio_url(field, value))


def _check_twiml(value: object) -> None:
    _check_text(value, "twiml", limit=_TWIML_LIMIT, whose="transfer plan")
    if value is None:
        return
    text = t.cast(str, value)
    # TwiML is XML: what does not parse here fails at Vapi, mid-transfer. Declarations, entities
    # and CDATA have no use in these few verbs, and are refused before the parser sees them.
    if "<!" in text or "<?" in text:
        raise InvalidDestination(messages.plan_twiml_not_xml("it has a declaration or CDATA section"))
    wrapped = text if text.lstrip().startswith("<Response") else f"<Response>{text}</Response>"
    try:
        root = ElementTree.fromstring(wrapped)
    except ElementTree.ParseError as exc:
        raise InvalidDestination(messages.plan_twiml_not_xml(str(exc))) from None
    for element in root.iter():
        if element is not root and element.tag not in _TWIML_VERBS:
            raise InvalidDestination(messages.plan_twiml_verb(element.tag, _TWIML_VERBS))
    if root.tag != "Response":
        raise InvalidDestination(messages.plan_twiml_verb(root.tag, _TWIML_VERBS))


def _check_context(value: object) -> None:
    if value is None or value in ("all", "none"):
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidDestination(messages.plan_context(value))


def _frozen_messages(value: object) -> tuple[t.Mapping[str, t.Any], ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, t.Sequence):
        raise InvalidDestination(messages.plan_summary_messages(value))
    frozen = []
    for item in value:
        if not isinstance(item, t.Mapping) or not all(isinstance(key, str) for key in item):
            raise InvalidDestination(messages.plan_summary_messages(value))
        try:
            # A deep copy through JSON: what Vapi gets is JSON, and the plan must not change later.
            copy = json.loads(json.dumps(dict(item), allow_nan=False))
        except (TypeError, ValueError):
            raise InvalidDestination(messages.plan_summary_messages(value)) from None
        frozen.append(types.MappingProxyType(copy))
    return tuple(frozen)


@dataclasses.dataclass(frozen=True)
class SummaryPlan:
    """How Vapi summarises the call for the person a warm transfer reaches (Vapi's ``SummaryPlan``).

    Used in the summary modes (``warm-transfer-say-summary``,
    ``warm-transfer-wait-for-operator-to-speak-first-and-then-say-summary``), in
    ``blind-transfer-add-summary-to-sip-header`` and in ``warm-transfer-experimental``.

    :param enabled: ``False`` turns the summary off (Vapi's default is on).
    :param messages: the prompt, as message dicts such as ``{"role": "system", "content": ...}``;
        Vapi fills in ``{{transcript}}``, ``{{systemPrompt}}``, ``{{messages}}`` and
        ``{{endedReason}}``.
    :param timeout_seconds: how long Vapi waits for the summary, 1 to 60 (Vapi's default is 5).
    :raises InvalidDestination: if any argument is invalid.

    .. versionadded:: 0.1
    """

    enabled: bool | None = dataclasses.field(default=None, kw_only=True)
    messages: t.Sequence[t.Mapping[str, t.Any]] | None = dataclasses.field(default=None, kw_only=True)
    timeout_seconds: float | None = dataclasses.field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_flag(self.enabled, "enabled", whose="summary plan")
        object.__setattr__(self, "messages", _frozen_messages(self.messages))
        _check_seconds(self.timeout_seconds, "timeout_seconds", 1, 60, whose="summary plan")

    def __hash__(self) -> int:
        messages = json.dumps([dict(m) for m in self.messages], sort_keys=True) if self.messages else None
        return hash((self.enabled, messages, self.timeout_seconds))


@dataclasses.dataclass(frozen=True)
class FallbackPlan:
    """What Vapi does when a transfer fails (Vapi's ``TransferFallbackPlan``).

    Used in ``warm-transfer-experimental``, and in the blind modes when the Vapi organisation has
    transfer outcome detection and fallback turned on.

    :param message: said to the caller when the transfer fails.
    :param end_call_enabled: ``False`` keeps the assistant on the call after the message, to go on
        helping the caller; Vapi's default ends the call.
    :raises InvalidDestination: if any argument is invalid.

    .. versionadded:: 0.1
    """

    message: str
    end_call_enabled: bool | None = dataclasses.field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.message is None:
            raise InvalidDestination(messages.attribute_empty("message", whose="fallback plan"))
        _check_text(self.message, "message", limit=None, allow_empty=True, whose="fallback plan")
        _check_flag(self.end_call_enabled, "end_call_enabled", whose="fallback plan")


@dataclasses.dataclass(frozen=True)
class TransferPlan:
    """How Vapi carries out a transfer (Vapi's ``TransferPlan``): blind or warm, and the details
    of each mode. Give it to a :class:`NumberDestination` or :class:`SipDestination` as
    ``transfer_plan=``.

    Every field is checked against the mode when the plan is built: a field the mode does not use
    (a ``twiml`` outside ``warm-transfer-twiml``, a summary plan on a message mode, a
    ``dial_timeout`` without ``sip_verb="dial"``) raises
    :class:`~flask_calltransfer.InvalidDestination` naming the field and the mode. Fields left as
    ``None`` are left out of the reply, so Vapi's defaults apply.

    .. code-block:: python

        from flask_calltransfer import FallbackPlan, NumberDestination, TransferPlan

        plan = TransferPlan(
            "warm-transfer-wait-for-operator-to-speak-first-and-then-say-message",
            message="A caller about an unpaid invoice; they are on the line now.",
            timeout=30,
        )
        desk = NumberDestination("+31207948450", transfer_plan=plan)
        assert desk.mode == plan.mode

        experimental = TransferPlan(
            "warm-transfer-experimental",
            fallback_plan=FallbackPlan("Nobody is free right now.", end_call_enabled=False),
        )
        assert experimental.fallback_plan is not None

    :param mode: one of Vapi's modes (see :data:`TRANSFER_MODES`); Vapi's default is
        ``"blind-transfer"``.
    :param message: said to the person the call is transferred to, before the caller is connected
        (the message modes, ``blind-transfer-add-summary-to-sip-header``,
        ``warm-transfer-experimental``).
    :param timeout: seconds to wait for the operator to speak, 1 to 600 (the two
        ``warm-transfer-wait-for-operator-...`` modes; Vapi's default is 60).
    :param sip_verb: how the SIP leg is transferred: ``"refer"`` (Vapi's default), ``"bye"`` or
        ``"dial"``.
    :param dial_timeout: seconds the destination rings, 1 to 600; only with ``sip_verb="dial"``.
    :param hold_audio_url: an MP3 or WAV file played to the caller on hold
        (``warm-transfer-experimental``).
    :param transfer_complete_audio_url: an MP3 or WAV file played to the destination once the
        message or summary was said (``warm-transfer-experimental``).
    :param context_engineering_plan: how much of the conversation the transfer assistant gets:
        ``"all"`` (Vapi's default), ``"none"``, or a number of most recent messages
        (``warm-transfer-experimental``).
    :param twiml: TwiML run on the destination's leg before the caller is connected, at most 4096
        characters of ``Play``, ``Say``, ``Gather``, ``Hangup`` and ``Pause`` (``warm-transfer-twiml``).
    :param summary_plan: a :class:`SummaryPlan` (the summary modes,
        ``blind-transfer-add-summary-to-sip-header``, ``warm-transfer-experimental``).
    :param sip_headers_in_refer_to_enabled: ``True`` also puts a SIP destination's headers into the
        REFER's Refer-To URI, URL-encoded.
    :param fallback_plan: a :class:`FallbackPlan` (``warm-transfer-experimental``, and the blind
        modes when Vapi's transfer outcome detection is on).
    :raises InvalidDestination: if any argument is invalid or not used in ``mode``.

    .. versionadded:: 0.1
    """

    mode: str = _BLIND
    message: str | None = dataclasses.field(default=None, kw_only=True)
    timeout: float | None = dataclasses.field(default=None, kw_only=True)
    sip_verb: str | None = dataclasses.field(default=None, kw_only=True)
    dial_timeout: float | None = dataclasses.field(default=None, kw_only=True)
    hold_audio_url: str | None = dataclasses.field(default=None, kw_only=True)
    transfer_complete_audio_url: str | None = dataclasses.field(default=None, kw_only=True)
    context_engineering_plan: str | int | None = dataclasses.field(default=None, kw_only=True)
    twiml: str | None = dataclasses.field(default=None, kw_only=True)
    summary_plan: SummaryPlan | None = dataclasses.field(default=None, kw_only=True)
    sip_headers_in_refer_to_enabled: bool | None = dataclasses.field(default=None, kw_only=True)
    fallback_plan: FallbackPlan | None = dataclasses.field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_mode(self.mode)
        # What each field is; then whether the mode uses it.
        _check_text(self.message, "message", limit=None, allow_empty=True, whose="transfer plan")
        _check_seconds(self.timeout, "timeout", 1, 600)
        if self.sip_verb is not None and self.sip_verb not in SIP_VERBS:
            raise InvalidDestination(messages.plan_sip_verb_unknown(self.sip_verb, SIP_VERBS))
        _check_seconds(self.dial_timeout, "dial_timeout", 1, 600)
        _check_audio_url(self.hold_audio_url, "hold_audio_url")
        _check_audio_url(self.transfer_complete_audio_url, "transfer_complete_audio_url")
        _check_context(self.context_engineering_plan)
        _check_twiml(self.twiml)
        if self.summary_plan is not None and not isinstance(self.summary_plan, SummaryPlan):
            raise InvalidDestination(
                messages.plan_not_a_plan(
                    "summary_plan", "SummaryPlan", self.summary_plan, whose="transfer plan"
                )
            )
        _check_flag(self.sip_headers_in_refer_to_enabled, "sip_headers_in_refer_to_enabled")
        if self.fallback_plan is not None and not isinstance(self.fallback_plan, FallbackPlan):
            raise InvalidDestination(
                messages.plan_not_a_plan(
                    "fallback_plan", "FallbackPlan", self.fallback_plan, whose="transfer plan"
                )
            )
        for name, modes in PLAN_FIELD_MODES.items():
            if getattr(self, name) is not None and self.mode not in modes:
                raise InvalidDestination(messages.plan_field_mode(name, self.mode, modes))
        # Vapi's schema: "Only applicable when sipVerb='dial'. Not applicable for SIP REFER or BYE."
        if self.dial_timeout is not None and self.sip_verb != "dial":
            raise InvalidDestination(messages.plan_dial_timeout(self.mode, self.sip_verb))
        # Not refused, because the reference does not rule them out: sip_verb in any mode, and
        # sip_headers_in_refer_to_enabled with a verb other than REFER or on a number destination.

    def beyond_blind(self) -> tuple[str, ...]:
        """The attributes that make this plan more than a plain blind transfer, ``("mode",)`` first
        for a warm mode; ``()`` for ``TransferPlan("blind-transfer")``. Platforms that transfer only
        blind refuse a destination whose plan names any.

        .. versionadded:: 0.1
        """
        extras = ["mode"] if self.mode != _BLIND else []
        extras.extend(
            f"transfer_plan.{field.name}"
            for field in dataclasses.fields(self)
            if field.name != "mode" and getattr(self, field.name) is not None
        )
        return tuple(extras)


@functools.lru_cache(maxsize=16)
def _mode_plan(mode: str) -> TransferPlan:
    return TransferPlan(mode)


def _plan(mode: object, transfer_plan: object) -> TransferPlan | None:
    """The destination's plan from ``mode=`` (a shorthand) or ``transfer_plan=``."""
    if mode is not None and transfer_plan is not None:
        raise InvalidDestination(messages.mode_and_plan())
    if transfer_plan is not None:
        if not isinstance(transfer_plan, TransferPlan):
            raise InvalidDestination(messages.plan_not_a_plan("transfer_plan", "TransferPlan", transfer_plan))
        return transfer_plan
    if mode is None:
        return None
    _check_mode(mode)
    return _mode_plan(t.cast(str, mode))


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
    #: What the person who answers is told (:class:`~flask_calltransfer.Handoff`), or ``None``.
    handoff: Handoff | None

    #: Whether sending this destination needs the call: a hand-off to fill in, or
    #: ``caller_id=CALLER``. Worked out once, so every other transfer skips that step.
    per_call: t.ClassVar[bool] = False

    def with_handoff(self, handoff: Handoff | None) -> t.Self:
        """This destination with ``handoff`` attached (a new destination; ``None`` removes it).

        .. code-block:: python

            from flask_calltransfer import Handoff, NumberDestination

            desk = NumberDestination("+31207948450")
            told = desk.with_handoff(Handoff("Wants to cancel", account="ACC-77"))
            assert told.handoff.account == "ACC-77" and desk.handoff is None

        .. versionadded:: 0.1
        """
        return self.replaced(handoff=handoff)

    def replaced(self, **changes: t.Any) -> t.Self:
        """A copy with ``changes`` (checked again, as a new destination is).

        :meta private:
        """
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def _mark_per_call(self) -> None:
        if self.handoff is not None or getattr(self, "caller_id", None) == CALLER:
            object.__setattr__(self, "per_call", True)

    def describe(self) -> str:
        """A one-line, log-safe description, with numbers masked: ``"billing (number
        +3120****451)"`` for a directory entry, ``"number +3120****451"`` otherwise. Signals'
        receivers, the transfer log, ``flask calltransfer stats`` and the dashboard use it.

        .. versionadded:: 0.1
        """
        # Worked out once per destination (they are immutable): a directory entry is described
        # in the decision line of every webhook it answers.
        kept = getattr(self, "__dict__", None)
        found: str | None = kept.get("_description") if kept is not None else None
        if found is None:
            target = self._target()
            found = f"{self.directory_name} ({target})" if self.directory_name else target
            if kept is not None:
                kept["_description"] = found
        return found

    def _target(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        # Reprs end up in logs and tracebacks: the number is masked there too.
        return f"<{type(self).__name__} {self.describe()}>"


@dataclasses.dataclass(frozen=True, repr=False, init=False)
class NumberDestination(Destination):
    """Transfer to a phone number.

    The number is normalised to E.164 through phonenumbers. National formats use ``region``, or the
    app's ``CALLTRANSFER_DEFAULT_REGION`` when built inside an app context.

    .. code-block:: python

        from flask_calltransfer import NumberDestination

        sales = NumberDestination("+31 6 12345678", message="Connecting you to sales.",
                                  description="Pricing and quotes")
        assert sales.number == "+31612345678"

    :param number: the number to dial.
    :param message: said to the caller before the transfer; ``""`` means silent (Vapi).
    :param caller_id: the caller ID shown to the destination: an E.164 number, :data:`CALLER` for
        the caller's own number, or a Vapi template such as ``"{{customer.number}}"``.
    :param caller_id_name: the caller ID name (sipgate).
    :param extension: 1 to 10 digits dialled after the destination answers.
    :param description: tells the assistant's model when to choose this destination.
    :param mode: one of Vapi's transfer-plan modes, such as ``"warm-transfer-say-summary"``: a
        shorthand for ``transfer_plan=TransferPlan(mode)``.
    :param transfer_plan: a :class:`TransferPlan` with the mode and its details (Vapi); give
        either this or ``mode``, not both.
    :param e164: ``False`` skips E.164 normalisation and allows Vapi's ``^\\+?[a-zA-Z0-9]+$`` form,
        for SIP trunk short codes (Vapi's ``numberE164CheckEnabled: false``).
    :param region: region code for national numbers; defaults to ``CALLTRANSFER_DEFAULT_REGION``.
    :param handoff: what the person who answers is told (:class:`Handoff`).
    :raises InvalidDestination: if any argument is invalid.

    .. versionadded:: 0.1
    """

    kind: t.ClassVar[str] = "number"

    number: str
    message: str | None
    caller_id: str | None
    caller_id_name: str | None
    extension: str | None
    description: str | None
    #: The plan Vapi carries the transfer out with, from ``transfer_plan=`` or ``mode=``.
    transfer_plan: TransferPlan | None
    #: The plan's mode, ``None`` without a plan. Set through ``mode=`` or ``transfer_plan=``.
    mode: str | None = dataclasses.field(init=False, compare=False)
    e164: bool
    directory_name: str | None = dataclasses.field(compare=False)
    handoff: Handoff | None

    def __init__(
        self,
        number: str,
        *,
        message: str | None = None,
        caller_id: str | None = None,
        caller_id_name: str | None = None,
        extension: str | None = None,
        description: str | None = None,
        mode: str | None = None,
        transfer_plan: TransferPlan | None = None,
        e164: bool = True,
        directory_name: str | None = None,
        region: str | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        # Written out rather than generated: mode= and transfer_plan= are two ways to give one
        # plan, and dataclasses.replace() must rebuild the destination from the plan alone.
        region = region or _default_region()
        plan = _plan(mode, transfer_plan)
        normalised = phone.normalise(number, region) if e164 else phone.check_non_e164(number)
        caller_id = _check_caller_id(caller_id, region)
        if caller_id is not None and len(caller_id) > 40:
            raise InvalidDestination(messages.attribute_too_long("caller_id", 40))
        _check_text(message, "message", limit=1000, allow_empty=True)
        _check_text(caller_id_name, "caller_id_name", limit=64, one_line=True)
        _check_text(description, "description", limit=1000)
        if extension is not None and (not isinstance(extension, str) or not _EXTENSION.match(extension)):
            raise InvalidDestination(messages.extension_invalid(extension))
        if handoff is not None and not isinstance(handoff, Handoff):
            raise InvalidDestination(messages.handoff_not_handoff(handoff))
        values: dict[str, object] = {
            "number": normalised,
            "message": message,
            "caller_id": caller_id,
            "caller_id_name": caller_id_name,
            "extension": extension,
            "description": description,
            "transfer_plan": plan,
            "mode": plan.mode if plan is not None else None,
            "e164": e164,
            "directory_name": directory_name,
            "handoff": handoff,
        }
        for attribute, setting in values.items():
            object.__setattr__(self, attribute, setting)
        self._mark_per_call()

    def _target(self) -> str:
        return f"number {phone.mask(self.number)}"


@dataclasses.dataclass(frozen=True, repr=False, init=False)
class SipDestination(Destination):
    """Transfer to a SIP URI, optionally with custom SIP headers.

    .. code-block:: python

        from flask_calltransfer import SipDestination

        vip = SipDestination("sip:vip@pbx.example.com", headers={"X-Account": "4711"})
        assert vip.headers == {"X-Account": "4711"}

    :param uri: a ``sip:`` or ``sips:`` URI.
    :param message: said to the caller before the transfer.
    :param headers: SIP headers added to the transfer; names must be SIP header tokens and values
        must not contain line breaks.
    :param caller_id: the caller ID, used by Vapi only when the SIP verb is ``dial``.
    :param description: tells the assistant's model when to choose this destination (Vapi).
    :param mode: one of Vapi's transfer-plan modes: a shorthand for
        ``transfer_plan=TransferPlan(mode)``.
    :param transfer_plan: a :class:`TransferPlan` with the mode and its details (Vapi); give
        either this or ``mode``, not both.
    :param handoff: what the person who answers is told (:class:`Handoff`): its headers go out
        with the app's own, which win where both name the same header.
    :raises InvalidDestination: if any argument is invalid.

    .. versionadded:: 0.1
    """

    kind: t.ClassVar[str] = "sip"

    uri: str
    message: str | None
    headers: t.Mapping[str, str] | None
    caller_id: str | None
    description: str | None
    #: The plan Vapi carries the transfer out with, from ``transfer_plan=`` or ``mode=``.
    transfer_plan: TransferPlan | None
    #: The plan's mode, ``None`` without a plan. Set through ``mode=`` or ``transfer_plan=``.
    mode: str | None = dataclasses.field(init=False, compare=False)
    directory_name: str | None = dataclasses.field(compare=False)
    handoff: Handoff | None

    def __init__(
        self,
        uri: str,
        *,
        message: str | None = None,
        headers: t.Mapping[str, str] | None = None,
        caller_id: str | None = None,
        description: str | None = None,
        mode: str | None = None,
        transfer_plan: TransferPlan | None = None,
        directory_name: str | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        # Written out for the same reason as NumberDestination's.
        if not isinstance(uri, str) or not _SIP_URI.match(uri.strip()):
            raise InvalidDestination(messages.sip_uri_invalid(uri))
        plan = _plan(mode, transfer_plan)
        if headers is not None:
            if not isinstance(headers, t.Mapping):
                raise InvalidDestination(messages.sip_headers_not_mapping(headers))
            for name, value in headers.items():
                if not isinstance(name, str) or not _SIP_TOKEN.fullmatch(name):
                    raise InvalidDestination(messages.sip_header_name_invalid(name))
                if not isinstance(value, str) or _CONTROL.search(value):
                    raise InvalidDestination(messages.sip_header_value_invalid(name))
            # A read-only copy: the destination must not change after validation.
            headers = types.MappingProxyType(dict(headers))
        caller_id = _check_caller_id(caller_id, _default_region())
        _check_text(message, "message", limit=1000, allow_empty=True)
        _check_text(description, "description", limit=1000)
        if handoff is not None and not isinstance(handoff, Handoff):
            raise InvalidDestination(messages.handoff_not_handoff(handoff))
        values: dict[str, object] = {
            "uri": uri.strip(),
            "message": message,
            "headers": headers,
            "caller_id": caller_id,
            "description": description,
            "transfer_plan": plan,
            "mode": plan.mode if plan is not None else None,
            "directory_name": directory_name,
            "handoff": handoff,
        }
        for attribute, setting in values.items():
            object.__setattr__(self, attribute, setting)
        self._mark_per_call()

    def __hash__(self) -> int:
        headers = tuple(sorted(self.headers.items())) if self.headers else None
        return hash(
            (
                self.uri,
                self.message,
                headers,
                self.caller_id,
                self.description,
                self.transfer_plan,
                self.handoff,
            )
        )

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
    :param description: tells the assistant's model when to choose this destination.
    :raises InvalidDestination: if any argument is invalid.

    .. versionadded:: 0.1
    """

    kind: t.ClassVar[str] = "assistant"

    name: str
    message: str | None = dataclasses.field(default=None, kw_only=True)
    history: str | None = dataclasses.field(default=None, kw_only=True)
    description: str | None = dataclasses.field(default=None, kw_only=True)
    directory_name: str | None = dataclasses.field(default=None, kw_only=True, compare=False)
    handoff: Handoff | None = dataclasses.field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.handoff is not None and not isinstance(self.handoff, Handoff):
            raise InvalidDestination(messages.handoff_not_handoff(self.handoff))
        self._mark_per_call()
        _check_text(self.name, "name", limit=200)
        if self.name is None:
            raise InvalidDestination(messages.attribute_empty("name"))
        _check_text(self.message, "message", limit=1000, allow_empty=True)
        _check_text(self.description, "description", limit=1000)
        if self.history is not None and self.history not in HISTORY_MODES:
            raise InvalidDestination(messages.history_unknown(self.history, sorted(HISTORY_MODES)))

    def _target(self) -> str:
        return f"assistant {self.name!r}"


class _lazy(functools.cached_property[_T]):
    """:func:`functools.cached_property` without the lock it takes on every first access in
    Python 3.11 (3.12 dropped it): a request's derived values are pure functions of the frozen
    request, so two threads computing one at the same moment get equal values."""

    def __get__(self, instance: object, owner: type[t.Any] | None = None) -> t.Any:
        if instance is None:
            return self
        cache = instance.__dict__
        name: str = self.attrname  # type: ignore[assignment]
        try:
            return cache[name]
        except KeyError:
            value = cache[name] = self.func(instance)
            return value


@dataclasses.dataclass(frozen=True, init=False)
class DestinationChain:
    """Destinations to try in order for one call: the first that is available and not yet tried
    on this call is sent, and when the platform reports that it failed (busy, no answer,
    voicemail), the next.

    .. code-block:: python

        from flask_calltransfer import DestinationChain

        @transfers.on_request
        def route(call):
            return DestinationChain(["sales-anna", "sales-bram", "+31207948400"])

    :param destinations: destination objects, directory names, or number and SIP strings, in the
        order they are tried.
    :param name: names the chain in the transfer log and ``flask calltransfer stats``.
    :param message: what Vapi says to the caller when a transfer fails and the assistant stays on
        the call to try the next one.
    :param callback: a :class:`Callback` offered when no entry is left to try: every one full,
        unavailable, or tried and failed.
    :raises ValueError: for an empty chain or a message that is not a sentence.
    :raises TypeError: for an entry that is neither a destination nor a string.

    .. versionadded:: 0.1
    """

    destinations: tuple[Destination | str, ...]
    name: str | None
    message: str
    callback: Callback | None

    def __init__(
        self,
        destinations: t.Iterable[Destination | str],
        *,
        name: str | None = None,
        message: str | None = None,
        callback: Callback | None = None,
    ) -> None:
        entries = tuple(destinations) if not isinstance(destinations, (str, Destination)) else (destinations,)
        if not entries:
            raise ValueError(messages.chain_empty())
        if len(entries) > 20:
            # Each entry may cost store round trips on every request of the call.
            raise ValueError(messages.chain_too_long(len(entries), 20))
        for entry in entries:
            if not isinstance(entry, (Destination, str)):
                raise TypeError(messages.chain_entry_invalid(entry))
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(messages.chain_name_invalid(name))
        text = messages.failover_message() if message is None else message
        if not isinstance(text, str) or not text.strip() or len(text) > 1000:
            raise ValueError(messages.chain_message_invalid())
        if callback is not None and not isinstance(callback, Callback):
            raise TypeError(messages.chain_callback_invalid(callback))
        object.__setattr__(self, "destinations", entries)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "message", text)
        object.__setattr__(self, "callback", callback)


_NOT_REACHED = frozenset({"busy", "no-answer", "voicemail", "failed", "cancelled", "caller-hung-up"})


class Attempt(t.NamedTuple):
    """One try of a transfer on a call, as kept in the store.

    .. versionadded:: 0.1
    """

    #: 1 for the first try on the call, 2 for the next, ...
    number: int
    #: The destination's directory name, or its log-safe description.
    destination: str
    #: How it ended (one of :data:`~flask_calltransfer.platforms.base.OUTCOMES`), ``None`` while
    #: the platform has not said.
    outcome: str | None
    #: The platform's own word for the outcome.
    detail: str | None
    #: When it was sent, in seconds since 1970.
    at: float

    @property
    def failed(self) -> bool:
        """Whether it ended without reaching anyone (``unknown`` is not known to have failed)."""
        return self.outcome in _NOT_REACHED


#: Anything a handler may return: a destination, a string shorthand, a chain to try in order, or
#: ``None`` for no opinion.
HandlerResult = Destination | str | DestinationChain | Callback | None


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
        # Given values stand in for what the conversation would derive on first access.
        if text is not None:
            values["text"] = text
        if transcript is not None:
            values["transcript"] = transcript
        if messages is not None:
            values["messages"] = messages
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"TransferRequest is immutable; cannot set {name!r}.")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"TransferRequest is immutable; cannot delete {name!r}.")

    @property
    def received(self) -> float:
        """When the request arrived, on the :func:`time.monotonic` clock."""
        received: float = self.__dict__["_received"]
        return received

    def _source(self) -> Conversation:
        source: Conversation = self.__dict__["_conversation"]
        return source

    @_lazy
    def caller(self) -> str | None:
        """Who placed the call: E.164 when it parses, else the raw string, else ``None``."""
        return phone.to_e164_or_raw(self.__dict__["_caller"], self.__dict__["_region"])

    @_lazy
    def called(self) -> str | None:
        """The number that was called: E.164 when it parses, else the raw string, else ``None``."""
        return phone.to_e164_or_raw(self.__dict__["_called"], self.__dict__["_region"])

    @_lazy
    def text(self) -> str:
        """The caller's latest utterance, ``""`` when there is none."""
        return self._source().text()

    @_lazy
    def transcript(self) -> str:
        """The conversation so far as one string, ``""`` when the platform sends none."""
        return self._source().transcript()

    @_lazy
    def messages(self) -> list[dict[str, str]]:
        """The conversation as ``{"role", "content"}`` dicts, roles ``user``, ``assistant``,
        ``system`` and ``tool``."""
        return self._source().messages()

    @_lazy
    def attempts(self) -> tuple[Attempt, ...]:
        """This call's earlier transfer attempts, oldest first, read from the store on first
        access: kept for the destinations of a :class:`DestinationChain` and for directory
        entries with ``max_concurrent``. ``()`` without a call id or outside the app.

        .. versionadded:: 0.1
        """
        if not self.call_id or not has_app_context():
            return ()
        state = current_app.extensions.get("calltransfer")
        failover = getattr(state, "failover", None)
        if state is None or failover is None:
            return ()
        found: tuple[Attempt, ...] = failover.seen_by(self, state.platforms.get(self.platform))
        return found

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
