"""Hand-off context: what the person who takes a transferred call is told about it.

A :class:`Handoff` is attached to a destination by a handler. The extension gives it a short id
and the caller's own number when the transfer is sent, and each platform carries what it can:
SIP ``X-Handoff-*`` headers and a hex ``User-to-User`` header, Vapi's operator message for the
warm message modes, or nothing (see the capability table in the docs). Every value that goes into
a header or is spoken is checked here when the hand-off is built, so the traceback points at the
handler's line, never at a transfer half sent.
"""

from __future__ import annotations

import re
import secrets
import typing as t
import urllib.parse

from . import messages
from . import phone
from .exceptions import InvalidDestination

#: Bytes of ``Name: value`` lines the hand-off's SIP headers may take together, the id, the
#: caller's number, ``User-to-User`` and the screen-pop link included. Twilio passes headers as URI
#: parameters under 1024 characters in all; SIP over UDP wants the whole INVITE under about 1300
#: bytes: this leaves room for the app's own headers and for Twilio's URL-encoding.
HEADER_BUDGET: t.Final = 768
#: What the extension adds itself, at most: ``X-Handoff-Id``, ``X-Handoff-Caller``,
#: ``User-to-User`` and ``X-Handoff-Url``. The app's own fields share the rest of the budget.
_RESERVED: t.Final = 360
#: The longest screen-pop link sent as ``X-Handoff-Url``; a longer one stays out of the headers.
MAX_URL: t.Final = 200
#: The most app fields a hand-off carries.
MAX_FIELDS: t.Final = 8
LIMITS: t.Final[t.Mapping[str, int]] = {
    "reason": 128,
    "summary": 1000,
    "account": 64,
    "ticket": 64,
    "field name": 32,
    "field value": 128,
}
#: The attributes that can be marked sensitive, besides the app's own field names.
ATTRIBUTES: t.Final = ("reason", "summary", "account", "ticket")

_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,31}")
#: Header names the extension writes itself: no field may take them (SIP names ignore case).
_RESERVED_NAMES = frozenset({"id", "caller", "url", "reason", "account", "ticket"})
#: The longest caller's number sent as ``X-Handoff-Caller``: an E.164 number takes 16.
_MAX_CALLER = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Printable ASCII but the percent sign: what a header value carries as it is.
_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")
WITHHELD: t.Final = "[number withheld]"


def _text(value: object, what: str, *, one_line: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidDestination(messages.attribute_not_text(what, value, whose="hand-off"))
    if not value.strip():
        raise InvalidDestination(messages.attribute_empty(what, whose="hand-off"))
    limit = LIMITS["field value" if what.startswith("field ") else what]
    if len(value) > limit:
        raise InvalidDestination(messages.attribute_too_long(what, limit, whose="hand-off"))
    if one_line and _CONTROL.search(value):
        raise InvalidDestination(messages.handoff_control_characters(what))
    return value


def new_handoff_id() -> str:
    """A new hand-off id: twelve hex digits, short enough to read out over the phone in a pinch.

    :meta private:
    """
    return secrets.token_hex(6)


def header_value(text: str) -> str:
    """``text`` as an ASCII-safe SIP header value: UTF-8, percent-encoded outside printable ASCII
    (and the percent sign itself), so any PBX or URI parameter takes it unchanged."""
    return urllib.parse.quote(text, safe=_SAFE)


class Handoff:
    """What the person who takes the call should know: why the caller is calling, what the
    assistant already did, and which account or ticket it is about.

    Attach one to any destination with ``handoff=`` or :meth:`Destination.with_handoff
    <flask_calltransfer.NumberDestination.with_handoff>`:

    .. code-block:: python

        from flask_calltransfer import Handoff, SipDestination

        desk = SipDestination(
            "sip:billing@pbx.example.com",
            handoff=Handoff(
                "Disputes an invoice",
                summary="The caller was charged twice for March and has the invoice at hand.",
                account="ACC-1042",
                fields={"Plan": "Business"},
                sensitive={"summary"},
            ),
        )
        assert desk.handoff.reason == "Disputes an invoice"

    When the transfer is sent, the extension gives the hand-off a short :attr:`id` and the
    caller's own number (:attr:`caller`). SIP destinations then carry ``X-Handoff-Id``,
    ``X-Handoff-Caller``, ``X-Handoff-Reason``, ``X-Handoff-Account``, ``X-Handoff-Ticket``, one
    ``X-Handoff-<Name>`` per field and ``User-to-User`` (the id, hex-encoded) where the platform
    passes SIP headers; Vapi's warm message modes say the reason and summary to the person who
    answers. Values are percent-encoded outside printable ASCII.

    :param reason: why the caller is calling, in a few words (at most 128 characters, one line).
    :param summary: what the assistant learned and did (at most 1000 characters). It is spoken
        to the person who answers where the platform can (Vapi's warm message modes) and shown on
        the screen-pop page; it never goes into a header.
    :param account: the caller's account id (at most 64 characters, one line).
    :param ticket: a ticket or case id (at most 64 characters, one line).
    :param fields: up to 8 more values, by name (a letter, then letters, digits or dashes, at most
        32 characters; each value at most 128 characters, one line).
    :param sensitive: the attributes (``"reason"``, ``"summary"``, ``"account"``, ``"ticket"``) and
        field names that never go into a header or a spoken summary; they are kept for the
        screen-pop page only.
    :param include_caller: ``False`` leaves the caller's number out of the headers.
    :param refer_to: also put ``User-to-User`` inside the REFER's Refer-To URI, where some contact
        centre PBXs read it (Vapi: its ``sipHeadersInReferToEnabled``, which puts every header
        there; jambonz ``sip:refer``).
    :raises InvalidDestination: for a value of the wrong type, too long, on more than one line,
        an unknown name in ``sensitive``, or headers over the budget (:data:`HEADER_BUDGET`).

    Phone numbers other than the caller's own are withheld from headers and from the spoken
    summary (replaced by ``"[number withheld]"``): any run of seven or more digits, however it is
    written, but an ISO date. Everything is kept for the screen-pop page, which only a signed
    link opens.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "reason",
        "summary",
        "account",
        "ticket",
        "_fields",
        "sensitive",
        "include_caller",
        "refer_to",
        "id",
        "caller",
        "url",
    )

    reason: str | None
    summary: str | None
    account: str | None
    ticket: str | None
    _fields: tuple[tuple[str, str], ...]
    #: The attributes and field names kept out of headers and spoken summaries.
    sensitive: frozenset[str]
    include_caller: bool
    refer_to: bool
    #: The hand-off id the extension assigned when the transfer was sent, else ``None``.
    id: str | None
    #: The caller's own number (E.164 where known), set with the id; ``None`` before.
    caller: str | None
    #: The signed screen-pop link, set with the id when the app serves one; else ``None``.
    url: str | None

    def __init__(
        self,
        reason: str | None = None,
        *,
        summary: str | None = None,
        account: str | None = None,
        ticket: str | None = None,
        fields: t.Mapping[str, str] | None = None,
        sensitive: t.Iterable[str] = (),
        include_caller: bool = True,
        refer_to: bool = False,
    ) -> None:
        values: dict[str, object] = {
            "reason": _text(reason, "reason", one_line=True),
            "summary": _text(summary, "summary", one_line=False),
            "account": _text(account, "account", one_line=True),
            "ticket": _text(ticket, "ticket", one_line=True),
        }
        if fields is None:
            fields = {}
        if not isinstance(fields, t.Mapping):
            raise InvalidDestination(messages.handoff_fields_not_mapping(fields))
        if len(fields) > MAX_FIELDS:
            raise InvalidDestination(messages.handoff_too_many_fields(len(fields), MAX_FIELDS))
        pairs = []
        seen: set[str] = set()
        for name, value in fields.items():
            # fullmatch: "$" would let a name end in a line break, straight into a header name.
            if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
                raise InvalidDestination(messages.handoff_field_name_invalid(name))
            if name.lower() in _RESERVED_NAMES or name.lower() in seen:
                raise InvalidDestination(messages.handoff_field_name_taken(name))
            seen.add(name.lower())
            text = _text(value, f"field {name}", one_line=True)
            pairs.append((name, t.cast(str, text)))
        if isinstance(sensitive, str):
            # One name, not its letters.
            sensitive = (sensitive,)
        if not isinstance(sensitive, t.Iterable):
            raise InvalidDestination(messages.handoff_sensitive_not_names(sensitive))
        marked = frozenset(sensitive)
        known = set(ATTRIBUTES) | {name for name, _ in pairs}
        unknown = sorted(str(name) for name in marked - known)
        if unknown:
            raise InvalidDestination(messages.handoff_sensitive_unknown(unknown, sorted(known)))
        if not isinstance(include_caller, bool) or not isinstance(refer_to, bool):
            raise InvalidDestination(messages.handoff_flag_not_bool())
        for attribute, setting in values.items():
            object.__setattr__(self, attribute, setting)
        object.__setattr__(self, "_fields", tuple(pairs))
        object.__setattr__(self, "sensitive", marked)
        object.__setattr__(self, "include_caller", include_caller)
        object.__setattr__(self, "refer_to", refer_to)
        object.__setattr__(self, "id", None)
        object.__setattr__(self, "caller", None)
        object.__setattr__(self, "url", None)
        size = sum(len(name) + 2 + len(value) for name, value in self._app_headers(None))
        if size > HEADER_BUDGET - _RESERVED:
            raise InvalidDestination(messages.handoff_headers_too_long(size, HEADER_BUDGET - _RESERVED))

    # A value object: immutable, compared and hashed by value ------------------------------------

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"A Handoff cannot be changed; build a new one instead of setting {name}.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"A Handoff cannot be changed; build a new one instead of deleting {name}.")

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Handoff):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        # Reprs reach logs and tracebacks: what the hand-off says stays out of them.
        named = ", ".join(
            name for name in (*ATTRIBUTES, *dict(self._fields)) if self._value(name) is not None
        )
        return f"<Handoff {self.id or 'unsent'} ({named or 'empty'})>"

    # Reading it ----------------------------------------------------------------------------------

    @property
    def fields(self) -> dict[str, str]:
        """The app's own fields, by name (a new dict)."""
        return dict(self._fields)

    def _value(self, name: str) -> str | None:
        if name in ATTRIBUTES:
            return t.cast("str | None", getattr(self, name))
        return dict(self._fields).get(name)

    def arguments(self) -> dict[str, t.Any]:
        """What builds this hand-off again, unsent (``Handoff(**handoff.arguments())``), as JSON.

        :meta private:
        """
        return {
            "reason": self.reason,
            "summary": self.summary,
            "account": self.account,
            "ticket": self.ticket,
            "fields": self.fields,
            "sensitive": sorted(self.sensitive),
            "include_caller": self.include_caller,
            "refer_to": self.refer_to,
        }

    def sent(self, handoff_id: str, caller: str | None, url: str | None = None) -> Handoff:
        """This hand-off as sent: with its id, the caller's own number and its screen-pop link.

        :meta private:
        """
        copy = object.__new__(Handoff)
        for name in self.__slots__:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "id", handoff_id)
        object.__setattr__(copy, "caller", caller)
        object.__setattr__(copy, "url", url)
        return copy

    def _withheld(self, text: str) -> str:
        return phone.withhold_numbers(text, keep=self.caller, replacement=WITHHELD)

    def _app_headers(self, caller: str | None) -> list[tuple[str, str]]:
        found = []
        for attribute in ("reason", "account", "ticket"):
            value = getattr(self, attribute)
            if value is not None and attribute not in self.sensitive:
                found.append((f"X-Handoff-{attribute.title()}", value))
        for name, value in self._fields:
            if name not in self.sensitive:
                found.append((f"X-Handoff-{name}", value))
        withheld = phone.withhold_numbers
        return [
            (name, header_value(withheld(value, keep=caller, replacement=WITHHELD))) for name, value in found
        ]

    def headers(self, fits: t.Callable[[dict[str, str]], bool] | None = None) -> dict[str, str]:
        """The SIP headers this hand-off travels in: ``X-Handoff-Id``, ``X-Handoff-Caller``, one
        per value not marked sensitive, ``X-Handoff-Url`` (its screen-pop link, when the app
        serves one) and ``User-to-User``. Empty before the hand-off is sent, as the id is not
        known yet.

        They are held to :data:`HEADER_BUDGET`, and to ``fits`` (a platform's own limit, given
        the headers, say whether they fit) when given: what does not fit is left out, the link
        first, then the app's fields from the last, the ticket, the account, the reason and the
        caller; the id and ``User-to-User`` go last. A hand-off never fails a transfer.
        """
        if self.id is None:
            return {}
        ordered = [("X-Handoff-Id", self.id)]
        caller = header_value(self.caller) if self.include_caller and self.caller else None
        if caller is not None and len(caller) <= _MAX_CALLER:
            ordered.append(("X-Handoff-Caller", caller))
        ordered += self._app_headers(self.caller)
        if self.url is not None and len(self.url) <= MAX_URL:
            ordered.append(("X-Handoff-Url", header_value(self.url)))
        ordered.append(("User-to-User", self.uui()))
        drop = ["X-Handoff-Url", *(f"X-Handoff-{name}" for name, _ in reversed(self._fields))]
        drop += ["X-Handoff-Ticket", "X-Handoff-Account", "X-Handoff-Reason", "X-Handoff-Caller"]
        drop += ["User-to-User", "X-Handoff-Id"]
        headers = dict(ordered)
        for name in [None, *drop]:
            if name is not None:
                headers.pop(name, None)
            size = sum(len(key) + 2 + len(value) for key, value in headers.items())
            if size <= HEADER_BUDGET and (fits is None or fits(dict(headers))):
                return headers
        return {}

    def uui(self) -> str:
        """The ``User-to-User`` header value: the hand-off id, hex-encoded (RFC 7433)."""
        return f"{(self.id or '').encode().hex()};encoding=hex"

    def spoken(self) -> str | None:
        """What is said to the person who answers: the reason and the summary, unless marked
        sensitive, with numbers other than the caller's withheld. ``None`` when there is nothing."""
        parts = [
            value.strip().rstrip(".") + "."
            for attribute in ("reason", "summary")
            if (value := getattr(self, attribute)) is not None and attribute not in self.sensitive
        ]
        if not parts:
            return None
        return self._withheld(" ".join(parts))[: LIMITS["summary"]]

    def context(self) -> dict[str, t.Any]:
        """Everything the hand-off holds, sensitive values too: what the screen-pop page shows."""
        return {
            "id": self.id,
            "caller": self.caller,
            "reason": self.reason,
            "summary": self.summary,
            "account": self.account,
            "ticket": self.ticket,
            "fields": self.fields,
        }
