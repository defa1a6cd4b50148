"""The webhook blueprint: one POST rule per enabled platform, and HTTP glue only.

Error handlers are registered on this blueprint alone, so the host app's own error pages are left
as they are.
"""

from __future__ import annotations

import json
import re
import typing as t

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge

from . import messages
from . import signals
from .deadlines import HandlerTimeout
from .deadlines import RequestDeadline
from .dispatch import Dispatch
from .dispatch import answer_event
from .exceptions import BodyTimeout
from .exceptions import InvalidPayload
from .exceptions import PayloadTooLarge
from .exceptions import RequestVerificationFailed
from .logs import logger
from .models import TransferRequest
from .platforms.base import Inbound
from .platforms.base import Platform
from .platforms.base import json_response
from .state import KEY

if t.TYPE_CHECKING:
    from .state import State


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every request; NaN and Infinity are not JSON and no platform sends them.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


# A JSON string, escapes included: what is inside one is text, not structure. Possessive, and an
# unterminated string runs to the end: otherwise every later quote starts a scan to the end of
# the body again, and a body of escaped quotes takes minutes (quadratic time, holding the GIL).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z)', re.S)


def _values_at_most(body: bytes, limit: int) -> bool:
    """Whether ``body`` holds at most ``limit`` JSON values, decided without building any.

    Every value but the first follows a ``[``, a ``{`` or a ``,``; each value takes at least two
    bytes with its separator, so a body under ``2 * limit`` bytes is never scanned.
    """
    if len(body) < 2 * limit or _openings(body) < limit:
        return True
    # Commas and brackets inside strings counted too: count again without the strings.
    return _openings(_STRING.sub(b"", body)) < limit


def _openings(data: bytes) -> int:
    # One pass in C over the body instead of three counts: half the time on a 500 KB body.
    return len(data) - len(data.translate(None, b",[{"))


def decode(body: bytes, max_values: int | None = None) -> dict[str, t.Any]:
    """Decode a webhook body into a JSON object, or raise :class:`InvalidPayload` (or
    :class:`PayloadTooLarge` for more than ``max_values`` JSON values)."""
    if not body or body.isspace():
        raise InvalidPayload(messages.body_empty(), {"_body": ["Empty body."]})
    if max_values is not None and len(body) >= 2 * max_values and not _values_at_most(body, max_values):
        raise PayloadTooLarge(messages.body_too_many_values(max_values))
    try:
        payload = _DECODER.decode(body.decode("utf-8"))
    except RecursionError:
        raise InvalidPayload(messages.body_too_deep(), {"_body": ["Nested too deeply."]}) from None
    except ValueError as exc:
        # UnicodeDecodeError is a ValueError too: bodies that are not UTF-8 land here.
        detail = str(exc).splitlines()[0][:120]
        raise InvalidPayload(messages.body_not_json(detail), {"_body": ["Not valid JSON."]}) from None
    if not isinstance(payload, dict):
        raise InvalidPayload(messages.body_not_object(), {"_body": ["Not a JSON object."]})
    return payload


def _state() -> State:
    return t.cast("State", current_app.extensions[KEY])


def webhook(platform_name: str) -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # The request itself, not its proxy: this view reads it a dozen times on every webhook.
    req = request._get_current_object()  # type: ignore[attr-defined]
    state: State = app.extensions[KEY]
    platform = state.platforms[platform_name]
    limit = state.settings.max_body_bytes
    # One byte over the limit is let through so a streamed (chunked) body that stops exactly at
    # the cap can be told apart from one that was cut there.
    req.max_content_length = limit + 1
    inbound = Inbound(headers=req.headers, body=b"", method=req.method, url=lambda: req.url)
    header_only = platform.verifies_headers_only
    if header_only:
        # An unsigned body need not be read, or waited for, before the token is known to be wrong.
        platform.verify(inbound)
    # Platforms send their bodies at once; a client that trickles one must not hold the worker.
    # One timer for the body and then the handlers: see RequestDeadline.
    deadline = RequestDeadline(state.settings.body_timeout, state.timeouts[platform_name])
    try:
        try:
            # get_data caches the body by default: verification and the replay memory read it again.
            body = deadline.read(req.get_data)
        except RequestEntityTooLarge:
            body = None
        except HandlerTimeout:
            raise BodyTimeout(messages.body_too_slow(state.settings.body_timeout)) from None
        if body is None or len(body) > limit:
            raise PayloadTooLarge(messages.body_too_large(limit))
        inbound.body = body
        if not header_only:
            platform.verify(inbound)
        parsed = platform.parse(decode(body, state.settings.max_json_values), inbound)
        if isinstance(parsed, TransferRequest):
            return Dispatch(app, state, platform, parsed, body, deadline).answer()
    finally:
        # Also before an event's handlers: they get a deadline of their own.
        deadline.close()
    return answer_event(app, state, platform, parsed)


def _platform_name() -> str:
    return request.view_args.get("platform_name", "-") if request.view_args else "-"


def _rejected(status: int, reason: str, body: dict[str, t.Any]) -> Response:
    platform = _platform_name()
    logger.warning("Rejected a %s webhook request with %d: %s", platform, status, reason)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    signals.request_rejected.send(app, platform=platform, reason=reason, status=status)
    return json_response(body, status)


def _invalid_payload(exc: InvalidPayload) -> Response:
    reason = exc.description or messages.payload_invalid(_platform_name())
    return _rejected(
        400,
        reason,
        {"code": 400, "status": "Bad Request", "message": reason, "errors": exc.errors},
    )


def _verification_failed(exc: RequestVerificationFailed) -> Response:
    # The detail says which header failed; it goes to the log, the body stays fixed.
    return _rejected(
        401,
        exc.description or messages.verification_failed(),
        {"code": 401, "status": "Unauthorized", "message": messages.verification_failed()},
    )


def _too_large(exc: PayloadTooLarge) -> Response:
    reason = exc.description or ""
    return _rejected(413, reason, {"code": 413, "status": "Payload Too Large", "message": reason})


def _too_slow(exc: BodyTimeout) -> Response:
    reason = exc.description or ""
    response = _rejected(408, reason, {"code": 408, "status": "Request Timeout", "message": reason})
    # The rest of the body may still be on its way: this connection serves nothing more.
    response.headers["Connection"] = "close"
    return response


def _unexpected(exc: Exception) -> Response:
    # A bug of ours must not drop the call: the platform still gets its own safe answer.
    if isinstance(exc, HTTPException):
        return t.cast(Response, exc.get_response())
    logger.exception("Unexpected error while answering a %s webhook request.", _platform_name())
    platform = _state().platforms.get(_platform_name())
    if platform is None:
        return json_response({}, 200)
    return platform.render_failure()


def make_blueprint(platforms: t.Mapping[str, Platform]) -> Blueprint:
    """Build the blueprint with one ``POST /<name>`` rule per enabled platform.

    :meta private:
    """
    blueprint = Blueprint("calltransfer", __name__)
    for name in platforms:
        blueprint.add_url_rule(
            f"/{name}",
            endpoint=name,
            view_func=webhook,
            defaults={"platform_name": name},
            methods=["POST"],
        )
    blueprint.register_error_handler(InvalidPayload, _invalid_payload)
    blueprint.register_error_handler(RequestVerificationFailed, _verification_failed)
    blueprint.register_error_handler(PayloadTooLarge, _too_large)
    blueprint.register_error_handler(BodyTimeout, _too_slow)
    blueprint.register_error_handler(Exception, _unexpected)
    return blueprint
