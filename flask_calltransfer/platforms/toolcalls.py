"""Tool calls as transfer requests: finding our tool calls in a payload, and answering each one
exactly once.

Vapi and VoiceDock both ask a server to run function tools with a ``tool-calls`` message. When the
tool is one of the configured transfer tools, the handlers choose a destination and the platform's
call-control API carries it out. A platform may deliver the same tool call twice; the store makes
sure the control request is sent once and every delivery gets the same reply, whichever worker
process receives it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import json
import threading
import time
import typing as t

from flask import Response

from .. import messages
from ..exceptions import DeliveryFailed
from ..exceptions import StoreUnavailable
from ..exceptions import TransferRefused
from ..logs import logger
from ..models import Destination
from ..models import PlatformEvent
from ..models import TransferRequest
from .base import Outcome
from .base import Platform

if t.TYPE_CHECKING:
    from ..store import Store


TOOL_CALLS_EVENT = "tool-calls"
#: How long the reply to a tool call is kept for repeated deliveries.
REPLY_TTL = 3600.0
#: How often a second delivery looks for the first one's reply.
POLL_INTERVAL = 0.05


@dataclasses.dataclass(frozen=True)
class ToolCall:
    """One tool call from a ``tool-calls`` message.

    .. versionadded:: 0.1
    """

    id: str
    name: str
    arguments: dict[str, t.Any]


def decode_arguments(value: object) -> dict[str, t.Any]:
    """Tool arguments: an object, or a JSON string holding one. Anything else gives ``{}``."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip():
        try:
            decoded = json.loads(value)
        except (ValueError, RecursionError):
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return {}


def _tool_call(item: object) -> ToolCall | None:
    if not isinstance(item, dict):
        return None
    # toolWithToolCallList entries nest the call under "toolCall".
    nested = item.get("toolCall")
    call = nested if isinstance(nested, dict) else item
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    name = function.get("name") or call.get("name") or item.get("name")
    call_id = call.get("id") or item.get("id")
    if not isinstance(name, str) or not isinstance(call_id, str) or not call_id:
        return None
    for holder in (function, call):
        for key in ("arguments", "parameters"):
            if key in holder:
                return ToolCall(call_id, name, decode_arguments(holder[key]))
    return ToolCall(call_id, name, {})


def find(lists: t.Iterable[object], names: frozenset[str]) -> list[ToolCall]:
    """The tool calls named in ``names``, from one or more lists of any of the known shapes.

    Lists later in ``lists`` only add calls whose id was not seen yet.
    """
    found: dict[str, ToolCall] = {}
    for items in lists:
        if not isinstance(items, list):
            continue
        for item in items:
            call = _tool_call(item)
            if call is not None and call.name in names and call.id not in found:
                found[call.id] = call
    return list(found.values())


class _LocalClaims:
    """This process's own record of tool calls it claimed while the store was unavailable, so a
    repeat delivery to the same worker is not sent twice: during the outage, or after it."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._claims: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _id(key: str) -> str:
        # Tool call ids come from the request: a digest keeps each entry small whatever they are.
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def known(self, key: str) -> str | bool | None:
        """The reply (or ``False`` while none) of a claim this process made; ``None`` if none."""
        if not self._claims:
            # Nearly always: claims are made here only while the store is down. Reading a dict's
            # size needs no lock; a claim being made at the same moment is settled by claim(),
            # which takes the lock and looks again.
            return None
        with self._lock:
            found = self._claims.get(self._id(key))
        if found is None or found[0] <= time.monotonic():
            return None
        return found[1] if found[1] is not None else False

    def claim(self, key: str) -> str | bool:
        now = time.monotonic()
        ident = self._id(key)
        with self._lock:
            found = self._claims.get(ident)
            if found is not None and found[0] > now:
                return found[1] if found[1] is not None else False
            if len(self._claims) >= self._size:
                # Dicts keep insertion order: the oldest claims go first.
                for old in list(self._claims)[: self._size // 10]:
                    del self._claims[old]
            self._claims[ident] = (now + REPLY_TTL, None)
        return True

    def clear(self) -> None:
        with self._lock:
            self._claims.clear()

    def __bool__(self) -> bool:
        # Claims are made here only while the store is down: nearly always there are none.
        return bool(self._claims)

    def remember(self, key: str, reply: str) -> None:
        if not self._claims:
            return
        ident = self._id(key)
        with self._lock:
            if ident in self._claims:
                self._claims[ident] = (self._claims[ident][0], reply)


_local_claims = _LocalClaims()


class Ledger:
    """Exactly-once replies to tool calls, through the store.

    The first delivery of a tool call claims it; later deliveries wait for its reply and repeat it.
    When the store is unavailable the claim is made in this process only: the tool call is still
    delivered, once from this worker, and answered with its id.
    """

    def __init__(
        self, store: Store, platform: str, *, namespace: str = "toolcall", ttl: float = REPLY_TTL
    ) -> None:
        self._store = store
        self._platform = platform
        #: Keeps tool-call replies apart from other kinds of answers kept the same way (replays).
        self._namespace = namespace
        self._ttl = ttl
        # The keys' fixed parts, joined once: every tool call builds two keys.
        self._claims = f"{platform}:{namespace}:claim:"
        self._replies = f"{platform}:{namespace}:reply:"

    def claim(self, tool_call_id: str, *, wait: float) -> str | bool:
        """Claim a tool call.

        :return: ``True`` if this delivery is the first and must answer; the reply body of the
            first delivery if this one repeats it; ``False`` if the first delivery gave no reply
            within ``wait`` seconds.
        """
        key = self._claims + tool_call_id
        # Claimed here while the store was down: the store knows nothing of it, this worker does.
        # Its dict, not the object's truth: one Python call less on every tool call.
        local = _local_claims.known(key) if _local_claims._claims else None
        if local is not None:
            return local
        try:
            # Worth a try even right after a failure: a claim missed here may transfer twice.
            with self._store.trying():
                # The claim comes first, so a first delivery costs one round trip before
                # routing. It outlives the reply (kept ``ttl`` from a moment later, within
                # ``wait``) and the first delivery's deadline: while a reply can exist, so does
                # its claim.
                if self._store.incr(key, ttl=self._ttl + wait + 30) == 1:
                    return True
                return self._repeated(tool_call_id, wait=wait)
        except StoreUnavailable as exc:
            logger.warning(messages.tool_call_claimed_locally(self._platform, tool_call_id, str(exc)))
            return _local_claims.claim(key)

    def remember(self, tool_call_id: str, response: Response) -> Response:
        """Keep the reply to a tool call for later deliveries of it; returns the response."""
        chunks = response.response
        # A response built from a string holds its encoded body as a list: joined, not re-read.
        reply = b"".join(chunks).decode() if isinstance(chunks, list) else response.get_data(as_text=True)
        if _local_claims._claims:
            _local_claims.remember(self._claims + tool_call_id, reply)
        try:
            # The transfer was sent: keeping its reply is worth a try even right after a failure.
            with self._store.trying():
                self._store.set(self._replies + tool_call_id, reply, ttl=self._ttl)
        except StoreUnavailable as exc:
            logger.warning(messages.tool_call_reply_not_kept(self._platform, tool_call_id, str(exc)))
        return response

    def _repeated(self, tool_call_id: str, *, wait: float) -> str | bool:
        # Claimed before: the first delivery's reply, once it is there.
        reply = self._store.get(self._replies + tool_call_id)
        if reply is not None:
            return reply
        logger.info(messages.tool_call_repeated(self._platform, tool_call_id))
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            try:
                reply = self._store.get(self._replies + tool_call_id)
            except StoreUnavailable:
                # Another delivery holds the claim: sending it again could transfer twice.
                return False
            if reply is not None:
                return reply
        return False


#: When set (by ``flask calltransfer simulate``), deliveries are recorded here instead of sent.
_DRY_RUN: contextvars.ContextVar[list[tuple[TransferRequest, Destination]] | None] = contextvars.ContextVar(
    "calltransfer_dry_run", default=None
)


@contextlib.contextmanager
def dry_run() -> t.Iterator[list[tuple[TransferRequest, Destination]]]:
    """Record the deliveries made inside the block instead of sending them to the platforms."""
    sent: list[tuple[TransferRequest, Destination]] = []
    token = _DRY_RUN.set(sent)
    try:
        yield sent
    finally:
        _DRY_RUN.reset(token)


def carry_out(platform: Platform, call: TransferRequest, destination: Destination) -> None:
    """Deliver ``destination`` through the platform's API, or inside :func:`dry_run` check it and
    record it instead."""
    dry = _DRY_RUN.get()
    if dry is None:
        platform.deliver(call, destination)
        return
    if isinstance(platform, ToolCallPlatform):
        platform.check_delivery(destination)
    else:
        platform.check(destination)
    dry.append((call, destination))


class ToolCallPlatform(Platform):
    """A platform whose tool calls can ask for a transfer that an API then carries out.

    Subclasses set :attr:`tools` (the names of the transfer tools) and implement
    :meth:`deliver`, :meth:`tool_result` and :meth:`render_reply` (answers to requests that are not
    tool calls). Replies to tool calls are kept in the store, so a tool call delivered twice is
    answered twice the same way and delivered once.

    .. versionadded:: 0.1
    """

    #: The tool names whose calls are transfer requests.
    tools: frozenset[str] = frozenset()

    @functools.cached_property
    def ledger(self) -> Ledger:
        """The exactly-once ledger of this platform's tool calls, in the app's store (which an
        app keeps for its life)."""
        return Ledger(self.store, self.name)

    def owed(self, item: TransferRequest | PlatformEvent) -> Response | None:
        if not isinstance(item, TransferRequest) or item.tool_call_id is None:
            return None
        claimed = self.ledger.claim(item.tool_call_id, wait=self.settings.delivery_timeout)
        if claimed is True:
            return None
        if claimed is False:
            return self.tool_result(item, error=messages.tool_call_in_progress())
        return Response(claimed, mimetype="application/json")

    def deadline(self, call: TransferRequest) -> float:
        """When a delivery for ``call`` must be done, on the monotonic clock."""
        return call.received + self.settings.delivery_timeout

    def render(self, call: TransferRequest, outcome: Outcome) -> Response:
        if call.tool_call_id is None:
            return self.render_reply(call, outcome)
        if isinstance(outcome, TransferRefused):
            response = self.tool_result(call, error=outcome.reason)
        elif isinstance(outcome, DeliveryFailed):
            response = self.tool_result(call, error=messages.delivery_failed_result())
        else:
            # carry_out() written out: one call less on every tool call.
            dry = _DRY_RUN.get()
            if dry is None:
                self.deliver(call, outcome)
            else:
                self.check_delivery(outcome)
                dry.append((call, outcome))
            response = self.tool_result(call)
        return self.ledger.remember(call.tool_call_id, response)

    def render_reply(self, call: TransferRequest, outcome: Outcome) -> Response:
        """Answer a request that is not a tool call. The default has none to answer."""
        raise NotImplementedError(f"{self.name} asks for destinations through tool calls only.")

    def check_delivery(self, destination: Destination) -> None:
        """Raise :class:`UnsupportedDestination` if the call-control API cannot carry
        ``destination``. The default is :meth:`check`."""
        self.check(destination)

    def deliver(self, call: TransferRequest, destination: Destination) -> None:
        """Carry out the transfer through the platform's API.

        :raises UnsupportedDestination: before sending anything, if the API cannot carry it.
        :raises DeliveryFailed: if the API did not accept the transfer.
        """
        raise NotImplementedError

    def tool_result(self, call: TransferRequest, *, error: str | None = None) -> Response:
        """The platform's reply to a tool call: success, or ``error`` for the assistant to relay."""
        raise NotImplementedError
