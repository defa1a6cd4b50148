"""Every ``CALLTRANSFER_*`` configuration key, its default, and its validation.

``init_app`` writes the defaults into ``app.config`` with ``setdefault`` and validates the result at
once, so a typo fails at start-up with a :class:`~flask_calltransfer.ConfigurationError` naming the key,
not on the first live call.
"""

from __future__ import annotations

import dataclasses
import math
import typing as t

from . import messages
from . import phone
from .exceptions import ConfigurationError

URL_PREFIX = "CALLTRANSFER_URL_PREFIX"
PLATFORMS = "CALLTRANSFER_PLATFORMS"
VERIFY_REQUESTS = "CALLTRANSFER_VERIFY_REQUESTS"
DEFAULT_REGION = "CALLTRANSFER_DEFAULT_REGION"
FALLBACK = "CALLTRANSFER_FALLBACK"
REFUSAL_MESSAGE = "CALLTRANSFER_REFUSAL_MESSAGE"
MAX_BODY_BYTES = "CALLTRANSFER_MAX_BODY_BYTES"
BODY_TIMEOUT = "CALLTRANSFER_BODY_TIMEOUT"
MAX_JSON_VALUES = "CALLTRANSFER_MAX_JSON_VALUES"
REPLAY_WINDOW = "CALLTRANSFER_REPLAY_WINDOW"
STORE_URL = "CALLTRANSFER_STORE_URL"
STORE_TIMEOUT = "CALLTRANSFER_STORE_TIMEOUT"
STORE_COOLDOWN = "CALLTRANSFER_STORE_COOLDOWN"
HANDLER_TIMEOUT = "CALLTRANSFER_HANDLER_TIMEOUT"
LOG_TRANSFERS = "CALLTRANSFER_LOG_TRANSFERS"
DECISION_LOG = "CALLTRANSFER_DECISION_LOG"
LOG_CALLERS = "CALLTRANSFER_LOG_CALLERS"
LOG_RETENTION = "CALLTRANSFER_LOG_RETENTION"
LOG_HASH_KEY = "CALLTRANSFER_LOG_HASH_KEY"
DASHBOARD_TOKEN = "CALLTRANSFER_DASHBOARD_TOKEN"
HTTP_TIMEOUT = "CALLTRANSFER_HTTP_TIMEOUT"
HTTP_RETRIES = "CALLTRANSFER_HTTP_RETRIES"
DELIVERY_TIMEOUT = "CALLTRANSFER_DELIVERY_TIMEOUT"
HTTP_MAX_RESPONSE_BYTES = "CALLTRANSFER_HTTP_MAX_RESPONSE_BYTES"
HTTP_RETRY_SERVER_ERRORS = "CALLTRANSFER_HTTP_RETRY_SERVER_ERRORS"
CAPACITY_HOLD = "CALLTRANSFER_CAPACITY_HOLD"
HANDOFF_SECRET = "CALLTRANSFER_HANDOFF_SECRET"
HANDOFF_TTL = "CALLTRANSFER_HANDOFF_TTL"
HANDOFF_URL = "CALLTRANSFER_HANDOFF_URL"

VAPI_SECRET = "CALLTRANSFER_VAPI_SECRET"
VAPI_SECRET_HEADER = "CALLTRANSFER_VAPI_SECRET_HEADER"
VAPI_HMAC_SECRET = "CALLTRANSFER_VAPI_HMAC_SECRET"
VAPI_HMAC_ALGORITHM = "CALLTRANSFER_VAPI_HMAC_ALGORITHM"
VAPI_HMAC_SIGNATURE_HEADER = "CALLTRANSFER_VAPI_HMAC_SIGNATURE_HEADER"
VAPI_HMAC_TIMESTAMP_HEADER = "CALLTRANSFER_VAPI_HMAC_TIMESTAMP_HEADER"
VAPI_HMAC_PAYLOAD_FORMAT = "CALLTRANSFER_VAPI_HMAC_PAYLOAD_FORMAT"
VAPI_HMAC_ENCODING = "CALLTRANSFER_VAPI_HMAC_ENCODING"
VAPI_HMAC_PREFIX = "CALLTRANSFER_VAPI_HMAC_PREFIX"
VAPI_HMAC_MAX_AGE = "CALLTRANSFER_VAPI_HMAC_MAX_AGE"
VAPI_TOOLS = "CALLTRANSFER_VAPI_TOOLS"
VAPI_PUBLIC_KEY = "CALLTRANSFER_VAPI_PUBLIC_KEY"
VAPI_CONTROL_HOSTS = "CALLTRANSFER_VAPI_CONTROL_HOSTS"
VAPI_API_URL = "CALLTRANSFER_VAPI_API_URL"
VAPI_API_KEY = "CALLTRANSFER_VAPI_API_KEY"

VOICEDOCK_SECRET = "CALLTRANSFER_VOICEDOCK_SECRET"
VOICEDOCK_MAX_AGE = "CALLTRANSFER_VOICEDOCK_MAX_AGE"
VOICEDOCK_TOOLS = "CALLTRANSFER_VOICEDOCK_TOOLS"
VOICEDOCK_API_URL = "CALLTRANSFER_VOICEDOCK_API_URL"
VOICEDOCK_API_KEY = "CALLTRANSFER_VOICEDOCK_API_KEY"

SIPGATE_TOKEN = "CALLTRANSFER_SIPGATE_TOKEN"
SIPGATE_TOKEN_HEADER = "CALLTRANSFER_SIPGATE_TOKEN_HEADER"
SIPGATE_CALLER_ID_NAME = "CALLTRANSFER_SIPGATE_CALLER_ID_NAME"
SIPGATE_ANNOUNCE = "CALLTRANSFER_SIPGATE_ANNOUNCE"
SIPGATE_PENDING_TTL = "CALLTRANSFER_SIPGATE_PENDING_TTL"

#: The default of every key. ``init_app`` applies them with ``setdefault``.
DEFAULTS: t.Final[dict[str, t.Any]] = {
    URL_PREFIX: "/calltransfer",
    PLATFORMS: None,
    VERIFY_REQUESTS: True,
    DEFAULT_REGION: None,
    FALLBACK: None,
    REFUSAL_MESSAGE: "I'm sorry, I can't transfer your call right now.",
    # A long Vapi call carries thousands of artifact messages, twice over; 10 MiB leaves room.
    MAX_BODY_BYTES: 10 * 1024 * 1024,
    # Every JSON value costs a Python object: 10 MiB of "[{},{}...]" would be 3.5 million dicts and
    # hundreds of MB in a worker. A 2,000-message Vapi artifact holds about 40,000 values.
    MAX_JSON_VALUES: 200_000,
    # The platforms post from data centres; even a 10 MiB body arrives in well under a second.
    BODY_TIMEOUT: 2.0,
    # As long as the platforms' signatures stay valid (Vapi HMAC and VoiceDock: 300 s).
    REPLAY_WINDOW: 300.0,
    STORE_URL: None,
    # sipgate waits about a second in all: a store that has not answered in a quarter of it is down.
    STORE_TIMEOUT: 0.25,
    STORE_COOLDOWN: 1.0,
    # None: each platform's own default, safely inside that platform's webhook timeout.
    HANDLER_TIMEOUT: None,
    LOG_TRANSFERS: False,
    # "logger": an INFO line per decision; "environ": the line goes to the request's WSGI environ,
    # for an access log that prints it (the shipped gunicorn config's).
    DECISION_LOG: "logger",
    LOG_CALLERS: "mask",
    LOG_RETENTION: 30 * 24 * 3600,
    # None: the app's SECRET_KEY.
    LOG_HASH_KEY: None,
    DASHBOARD_TOKEN: None,
    HTTP_TIMEOUT: 5.0,
    HTTP_RETRIES: 2,
    # VoiceDock waits 10 s for a tool-call reply: the control request, retries included, must be done
    # well before that.
    DELIVERY_TIMEOUT: 8.0,
    # The platforms' control answers are a few hundred bytes.
    HTTP_MAX_RESPONSE_BYTES: 1024 * 1024,
    # A control POST answered 5xx may have run; sending it again may transfer the caller twice.
    HTTP_RETRY_SERVER_ERRORS: False,
    # The longest a transfer holds a place of a destination's max_concurrent when no outcome
    # gives it back: Vapi never reports the end of a call it forwarded.
    CAPACITY_HOLD: 1800.0,
    HANDOFF_SECRET: None,
    HANDOFF_TTL: 3600.0,
    HANDOFF_URL: None,
    VAPI_SECRET: None,
    VAPI_SECRET_HEADER: "X-Vapi-Secret",
    VAPI_HMAC_SECRET: None,
    VAPI_HMAC_ALGORITHM: "sha256",
    VAPI_HMAC_SIGNATURE_HEADER: "x-signature",
    VAPI_HMAC_TIMESTAMP_HEADER: "x-timestamp",
    VAPI_HMAC_PAYLOAD_FORMAT: "{timestamp}.{body}",
    VAPI_HMAC_ENCODING: "hex",
    VAPI_HMAC_PREFIX: "",
    VAPI_HMAC_MAX_AGE: 300,
    VAPI_TOOLS: [],
    VAPI_PUBLIC_KEY: None,
    # Vapi's control URLs live on its own domain; anything else is refused before it is called.
    VAPI_CONTROL_HOSTS: ["*.vapi.ai"],
    VAPI_API_URL: "https://api.vapi.ai",
    VAPI_API_KEY: None,
    VOICEDOCK_SECRET: None,
    VOICEDOCK_MAX_AGE: 300,
    VOICEDOCK_TOOLS: [],
    VOICEDOCK_API_URL: "https://api.hmsovereign.com/api/v1",
    VOICEDOCK_API_KEY: None,
    SIPGATE_TOKEN: None,
    SIPGATE_TOKEN_HEADER: "X-API-TOKEN",
    SIPGATE_CALLER_ID_NAME: None,
    SIPGATE_ANNOUNCE: True,
    # How long an announced transfer waits for the announcement to end.
    SIPGATE_PENDING_TTL: 120,
}


def apply_defaults(config: t.MutableMapping[str, t.Any]) -> None:
    """Write every default that the app did not set."""
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)


def get_str(config: t.Mapping[str, t.Any], key: str, *, optional: bool = False) -> str | None:
    value = config.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not optional and not value):
        raise ConfigurationError(messages.config_type(key, "a non-empty string", value), key=key)
    return value


def get_bool(config: t.Mapping[str, t.Any], key: str) -> bool:
    value = config.get(key)
    if not isinstance(value, bool):
        raise ConfigurationError(messages.config_type(key, "True or False", value), key=key)
    return value


def get_number(
    config: t.Mapping[str, t.Any], key: str, *, optional: bool = False, minimum: float = 0
) -> float | None:
    value = config.get(key)
    if value is None and optional:
        return None
    # NaN and infinity pass a comparison or two and then break timers: never a setting.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= minimum
    ):
        raise ConfigurationError(
            messages.config_type(key, f"a finite number greater than {minimum:g}", value), key=key
        )
    return float(value)


def get_secrets(config: t.Mapping[str, t.Any], key: str) -> tuple[str, ...]:
    """A secret setting: one string, or a list of strings so secrets can be rotated."""
    value = config.get(key)
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) and v for v in values):
        raise ConfigurationError(
            messages.config_type(key, "a non-empty string or a list of them", "<hidden>"), key=key
        )
    for secret in values:
        if not secret.strip():
            raise ConfigurationError(messages.config_secret_blank(key), key=key)
        try:
            # HTTP headers arrive as latin-1 (gunicorn decodes them so): nothing else can match.
            secret.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigurationError(messages.config_secret_not_latin1(key), key=key) from None
    return tuple(values)


def get_handoff_secrets(config: t.Mapping[str, t.Any]) -> tuple[str, ...]:
    """``CALLTRANSFER_HANDOFF_SECRET``: the keys that sign screen-pop links, each at least 16
    characters. Links are opt-in: the app's own ``SECRET_KEY`` does not turn them on."""
    secrets = get_secrets(config, HANDOFF_SECRET)
    for secret in secrets:
        if len(secret) < 16:
            raise ConfigurationError(messages.config_secret_short(HANDOFF_SECRET, 16), key=HANDOFF_SECRET)
    return secrets


#: Where each request's decision is written: see ``CALLTRANSFER_DECISION_LOG``.
DECISION_LOGS: t.Final = ("logger", "environ")

#: The WSGI environ key the decision goes to with ``CALLTRANSFER_DECISION_LOG = "environ"``.
DECISION_ENVIRON: t.Final = "flask_calltransfer.decision"


def get_choice(config: t.Mapping[str, t.Any], key: str, choices: t.Collection[str]) -> str:
    value = config.get(key)
    if value not in choices:
        raise ConfigurationError(messages.config_choice(key, value, choices), key=key)
    return t.cast(str, value)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated, platform-independent settings of one app.

    :meta private:
    """

    url_prefix: str
    verify: bool
    default_region: str | None
    refusal_message: str
    max_body_bytes: int
    store_url: str | None
    http_timeout: float
    http_retries: int
    delivery_timeout: float
    http_max_response_bytes: int = 1024 * 1024
    http_retry_server_errors: bool = False
    store_timeout: float = 0.25
    body_timeout: float = 2.0
    replay_window: float | None = 300.0
    store_cooldown: float = 1.0
    max_json_values: int | None = 200_000
    decision_log: str = "logger"
    capacity_hold: float = 1800.0
    handoff_ttl: float = 3600.0
    handoff_url: str | None = None


def load(config: t.Mapping[str, t.Any]) -> Settings:
    """Validate the platform-independent keys and return them as :class:`Settings`."""
    prefix = config.get(URL_PREFIX)
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ConfigurationError(messages.config_url_prefix(URL_PREFIX, prefix), key=URL_PREFIX)
    region = config.get(DEFAULT_REGION)
    if region is not None and (not isinstance(region, str) or not phone.is_region(region)):
        raise ConfigurationError(messages.config_region(DEFAULT_REGION, region), key=DEFAULT_REGION)
    refusal = get_str(config, REFUSAL_MESSAGE)
    max_body = config.get(MAX_BODY_BYTES)
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1024:
        raise ConfigurationError(
            messages.config_type(MAX_BODY_BYTES, "a whole number of bytes of at least 1024", max_body),
            key=MAX_BODY_BYTES,
        )
    return Settings(
        url_prefix=prefix.rstrip("/") or "/",
        verify=get_bool(config, VERIFY_REQUESTS),
        default_region=region.upper() if region else None,
        refusal_message=t.cast(str, refusal),
        max_body_bytes=max_body,
        store_url=get_str(config, STORE_URL, optional=True),
        http_timeout=t.cast(float, get_number(config, HTTP_TIMEOUT)),
        http_retries=_get_count(config, HTTP_RETRIES),
        delivery_timeout=t.cast(float, get_number(config, DELIVERY_TIMEOUT)),
        http_max_response_bytes=_get_bytes(config, HTTP_MAX_RESPONSE_BYTES),
        http_retry_server_errors=get_bool(config, HTTP_RETRY_SERVER_ERRORS),
        store_timeout=t.cast(float, get_number(config, STORE_TIMEOUT)),
        store_cooldown=t.cast(float, get_number(config, STORE_COOLDOWN)),
        body_timeout=t.cast(float, get_number(config, BODY_TIMEOUT)),
        replay_window=get_number(config, REPLAY_WINDOW, optional=True),
        max_json_values=_get_values(config, MAX_JSON_VALUES),
        decision_log=get_choice(config, DECISION_LOG, DECISION_LOGS),
        capacity_hold=t.cast(float, get_number(config, CAPACITY_HOLD)),
        handoff_ttl=t.cast(float, get_number(config, HANDOFF_TTL)),
        handoff_url=_get_public_url(config, HANDOFF_URL),
    )


def _get_public_url(config: t.Mapping[str, t.Any], key: str) -> str | None:
    value = get_str(config, key, optional=True)
    if value is None:
        return None
    if not value.startswith(("https://", "http://")) or "?" in value or "#" in value:
        raise ConfigurationError(messages.config_public_url(key, value), key=key)
    return value


def _get_bytes(config: t.Mapping[str, t.Any], key: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
        raise ConfigurationError(
            messages.config_type(key, "a whole number of bytes of at least 1024", value), key=key
        )
    return value


def _get_values(config: t.Mapping[str, t.Any], key: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1000:
        raise ConfigurationError(
            messages.config_type(key, "a whole number of at least 1000, or None for no limit", value),
            key=key,
        )
    return value


def _get_count(config: t.Mapping[str, t.Any], key: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ConfigurationError(messages.config_type(key, "a whole number from 0 to 10", value), key=key)
    return value


def get_timeouts(
    config: t.Mapping[str, t.Any], key: str, defaults: t.Mapping[str, float]
) -> dict[str, float]:
    """Per-platform handler timeouts: ``None`` (the defaults), one number, or a dict by platform."""
    value = config.get(key)
    if value is None:
        return dict(defaults)
    if isinstance(value, dict):
        unknown = set(value) - set(defaults)
        if unknown:
            raise ConfigurationError(
                messages.config_unknown_platform(key, sorted(unknown)[0], defaults), key=key
            )
        timeouts = {**defaults, **value}
    else:
        timeouts = dict.fromkeys(defaults, value)
    for timeout in timeouts.values():
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
            raise ConfigurationError(
                messages.config_type(key, "seconds (0 to 300), or a dict of them by platform name", value),
                key=key,
            )
    return {name: float(timeout) for name, timeout in timeouts.items()}


def get_names(config: t.Mapping[str, t.Any], key: str) -> frozenset[str]:
    """A list of names, such as tool names."""
    value = config.get(key)
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigurationError(messages.config_type(key, "a list of names", value), key=key)
    if not all(isinstance(name, str) and name for name in value):
        raise ConfigurationError(messages.config_type(key, "a list of non-empty names", value), key=key)
    return frozenset(value)


def get_url(config: t.Mapping[str, t.Any], key: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ConfigurationError(messages.config_type(key, "an http:// or https:// URL", value), key=key)
    return value
