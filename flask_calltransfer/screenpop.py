"""Screen-pop: a hand-off's context kept in the store and served at a signed, expiring link.

A CRM, softphone or agent desktop that gets ``X-Handoff-Url`` with the ringing call (or the link
from the ``transfer-resolved`` signal) opens it to show who is calling and why. The link is signed
with ``itsdangerous`` (Flask's own dependency) and expires with the context; a tampered link gets
``403``, an expired one ``410``, and neither any data. The context never reaches a log line.
"""

from __future__ import annotations

import json
import math
import typing as t

import itsdangerous
from flask import Response
from flask import has_request_context
from flask import request
from markupsafe import escape

from . import messages
from .exceptions import StoreUnavailable
from .handoff import Handoff
from .logs import logger
from .store.base import bookkeeping

if t.TYPE_CHECKING:
    from .store.base import Store

_SALT = "flask-calltransfer.handoff"
_KEY = "handoff:"
# The page, the JSON and every refusal: never cached, never framed, no referrer, no scripts.
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


class ScreenPop:
    """Keeps hand-off contexts and signs and reads their links, for one app.

    :param store: where contexts are kept, ``ttl`` seconds each.
    :param secrets: the signing keys, newest first (``CALLTRANSFER_HANDOFF_SECRET``); none turns
        screen-pop off.
    :param base_url: the public URL the links start with (``CALLTRANSFER_HANDOFF_URL``), else the
        webhook request's own root URL.

    :meta private:
    """

    def __init__(
        self, store: Store, secrets: t.Sequence[str], *, ttl: float, prefix: str, base_url: str | None
    ) -> None:
        self._store = store
        self.ttl = ttl
        self._prefix = "" if prefix == "/" else prefix
        self._base_url = base_url.rstrip("/") if base_url else None
        # itsdangerous signs with the last key and accepts them all.
        self._signer = (
            itsdangerous.URLSafeTimedSerializer(list(reversed(secrets)), salt=_SALT) if secrets else None
        )

    @property
    def enabled(self) -> bool:
        return self._signer is not None

    def keep(self, handoff: Handoff) -> str | None:
        """Keep ``handoff``'s context and return its link; ``None`` when screen-pop is off or the
        store could not keep it (the transfer goes on without a link)."""
        if self._signer is None or handoff.id is None:
            return None
        if self._base_url is None and not has_request_context():
            # No public URL configured and no request to take one from: nothing to link to.
            return None
        with bookkeeping("keeping a hand-off's context for its screen-pop link"):
            self._store.set(_KEY + handoff.id, json.dumps(handoff.context()), ttl=self.ttl)
            return self.link(handoff.id)
        return None

    def link(self, handoff_id: str) -> str:
        assert self._signer is not None
        token = self._signer.dumps(handoff_id)
        root = self._base_url or request.url_root.rstrip("/")
        return f"{root}{self._prefix}/handoff/{token}"

    def context(self, handoff_id: str) -> dict[str, t.Any] | None:
        """The context kept for ``handoff_id``, or ``None`` once it expired.

        :raises StoreUnavailable: if the store cannot be read.
        """
        kept = self._store.get(_KEY + handoff_id)
        if kept is None:
            return None
        try:
            found = json.loads(kept)
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    def serve(self, token: str) -> Response:
        """The answer to ``GET <prefix>/handoff/<token>``: the context as JSON (``Accept:
        application/json`` or ``?format=json``) or as a small page."""
        if self._signer is None:  # pragma: no cover - the route is registered only with a key
            return _refused(404, messages.handoff_link_off())
        try:
            handoff_id = self._signer.loads(token, max_age=math.ceil(self.ttl))
        except itsdangerous.SignatureExpired:
            return _refused(410, messages.handoff_link_expired())
        except itsdangerous.BadData:
            logger.warning("Refused a hand-off link whose signature does not match.")
            return _refused(403, messages.handoff_link_invalid())
        if not isinstance(handoff_id, str):
            return _refused(403, messages.handoff_link_invalid())
        try:
            found = self.context(handoff_id)
        except StoreUnavailable:
            response = _refused(503, messages.handoff_store_down())
            response.headers["Retry-After"] = "5"
            return response
        if found is None:
            return _refused(410, messages.handoff_link_expired())
        if _wants_json():
            return _response(json.dumps(found), "application/json", 200)
        return _response(_page(found), "text/html; charset=utf-8", 200)


def _wants_json() -> bool:
    if request.args.get("format") == "json":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _response(body: str, content_type: str, status: int) -> Response:
    response = Response(body, status, content_type=content_type)
    response.headers.update(_HEADERS)
    return response


def _refused(status: int, sentence: str) -> Response:
    if _wants_json():
        return _response(json.dumps({"code": status, "message": sentence}), "application/json", status)
    return _response(f"<!doctype html><title>Hand-off</title><p>{escape(sentence)}</p>", "text/html", status)


def _page(context: t.Mapping[str, t.Any]) -> str:
    rows = [
        ("Caller", context.get("caller")),
        ("Reason", context.get("reason")),
        ("Summary", context.get("summary")),
        ("Account", context.get("account")),
        ("Ticket", context.get("ticket")),
        *(context.get("fields") or {}).items(),
    ]
    cells = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows if value
    )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Hand-off "
        f"{escape(context.get('id') or '')}</title>"
        "<style>body{font:16px/1.4 system-ui,sans-serif;margin:2em}th{text-align:left;"
        "padding-right:1em;vertical-align:top}td{white-space:pre-wrap}</style>"
        f"<h1>Hand-off {escape(context.get('id') or '')}</h1><table>{cells}</table></html>"
    )
