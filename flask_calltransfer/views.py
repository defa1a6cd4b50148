"""The webhook blueprint: one POST rule per enabled platform, and HTTP glue only.

Error handlers are registered on this blueprint alone, so the host app's own error pages are left
as they are.
"""

from __future__ import annotations

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


def _state() -> State:
    return t.cast("State", current_app.extensions[KEY])


def webhook(platform_name: str) -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # The request itself, not its proxy: this view reads it a dozen times on every webhook.
    req = request._get_current_object()  # type: ignore[attr-defined]
    state: State = app.extensions[KEY]
    platform = state.platforms[platform_name]
    limit = state.settings.max_body_bytes
    # A server that ends the stream itself (gunicorn) is read directly when the Content-Length is
    # within the limit: the length bounds the read, and werkzeug's byte-counting wrapper, which
    # a limit on the request brings in, would only copy the body once more. The length is read
    # from the environ, not through werkzeug's property, which parses two headers for it on every
    # webhook. Anything but plain digits, or any Transfer-Encoding, takes the bounded path, where
    # werkzeug judges the length as it always does.
    environ = req.environ
    length = None
    if "wsgi.input_terminated" in environ and "HTTP_TRANSFER_ENCODING" not in environ:
        declared = environ.get("CONTENT_LENGTH")
        if declared and declared.isascii() and declared.isdigit():
            length = int(declared)
    if length is None or length > limit or app.config.get("MAX_CONTENT_LENGTH") is not None:
        # One byte over the limit is let through so a streamed (chunked) body that stops exactly
        # at the cap can be told apart from one that was cut there.
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
        parsed = platform.parse(platform.decode(body, inbound, state.settings.max_json_values), inbound)
        if isinstance(parsed, TransferRequest):
            return Dispatch(app, state, platform, parsed, body, deadline, environ).answer()
    finally:
        # Also before an event's handlers: they get a deadline of their own.
        deadline.close()
    return answer_event(app, state, platform, parsed, body)


def handoff_page(token: str) -> Response:
    """``GET <prefix>/handoff/<token>``: a hand-off's screen-pop page or JSON (see screenpop)."""
    return _state().screenpop.serve(token)


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


def make_blueprint(platforms: t.Mapping[str, Platform], *, handoff_links: bool = False) -> Blueprint:
    """Build the blueprint with one ``POST /<name>`` rule per enabled platform, and
    ``GET /handoff/<token>`` when hand-off links are on.

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
    if handoff_links:
        blueprint.add_url_rule(
            "/handoff/<token>", endpoint="handoff", view_func=handoff_page, methods=["GET"]
        )
    blueprint.register_error_handler(InvalidPayload, _invalid_payload)
    blueprint.register_error_handler(RequestVerificationFailed, _verification_failed)
    blueprint.register_error_handler(PayloadTooLarge, _too_large)
    blueprint.register_error_handler(BodyTimeout, _too_slow)
    blueprint.register_error_handler(Exception, _unexpected)
    return blueprint
