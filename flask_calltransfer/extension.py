"""The :class:`CallTransfer` extension: registration, configuration and routing."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import inspect
import logging
import time
import types
import typing as t

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import has_request_context
from flask import request

from . import config as cfg
from . import deadlines
from . import messages
from . import phone
from . import signals
from .analytics import TransferLog
from .clients import HttpClient
from .clients import HttpSettings
from .clients import VapiApiClient
from .clients import VapiControlClient
from .clients import VoiceDockClient
from .clients.allowlist import HostAllowlist
from .deadlines import HandlerTimeout
from .deadlines import call_with_deadline
from .exceptions import ConfigurationError
from .exceptions import DeliveryFailed
from .exceptions import InvalidDestination
from .exceptions import TransferRefused
from .exceptions import UnsupportedDestination
from .logs import logger
from .models import Destination
from .models import HandlerResult
from .models import NumberDestination
from .models import PlatformEvent
from .models import SipDestination
from .models import TransferRequest
from .platforms import BUILTIN_PLATFORMS
from .platforms import Platform
from .platforms.base import Services
from .platforms.toolcalls import Ledger
from .platforms.voicedock import number_attributes_not_carried
from .routing import DestinationPool
from .store import DEFAULT_URL
from .store import MemoryStore
from .store import Store
from .store import from_url
from .store.base import bookkeeping

#: A routing handler: takes the request, returns a destination, a string shorthand, or ``None``.
RequestHandler = t.Callable[[TransferRequest], HandlerResult | t.Awaitable[HandlerResult]]
#: An error handler: takes the request and the exception, returns a destination or ``None``.
ErrorHandler = t.Callable[[TransferRequest, Exception], HandlerResult | t.Awaitable[HandlerResult]]
#: An event handler: takes the event, returns the reply body or ``None`` for the platform's no-op.
EventHandler = t.Callable[
    [PlatformEvent],
    t.Mapping[str, t.Any] | None | t.Awaitable[t.Mapping[str, t.Any] | None],
]
Predicate = t.Callable[[TransferRequest], bool]

T_request_handler = t.TypeVar("T_request_handler", bound=RequestHandler)
T_error_handler = t.TypeVar("T_error_handler", bound=ErrorHandler)
T_event_handler = t.TypeVar("T_event_handler", bound=EventHandler)


def _platform_filter(platform: str | t.Iterable[str] | None) -> frozenset[str] | None:
    if platform is None:
        return None
    if isinstance(platform, str):
        names: tuple[object, ...] = (platform,)
    elif isinstance(platform, t.Iterable):
        names = tuple(platform)
    else:
        raise TypeError(messages.platform_filter_invalid(platform))
    if not names or not all(isinstance(name, str) and name for name in names):
        raise TypeError(messages.platform_filter_invalid(platform))
    return frozenset(t.cast(tuple[str, ...], names))


def _name(func: t.Callable[..., t.Any] | None) -> str:
    if func is None:
        return "CALLTRANSFER_FALLBACK"
    return getattr(func, "__qualname__", None) or repr(func)


def _running_name(running: list[t.Any]) -> str:
    func, in_predicate = running
    if func is None:
        return "-"
    return f"the when= predicate of {_name(func)}" if in_predicate else _name(func)


_TIMED_OUT = object()


def _run_async(app: Flask, func: t.Callable[..., t.Any], *args: t.Any) -> t.Any:
    """Call a handler; a coroutine function runs on Flask's ``ensure_sync`` within the deadline.

    asgiref runs the coroutine on an event loop in another thread while this one waits in C,
    where no interruption reaches. So the coroutine gets the deadline as an asyncio timeout, and
    the wait is shielded: when the deadline passes, the shield's end raises it here.
    """
    if not inspect.iscoroutinefunction(func):
        return func(*args)
    budget = deadlines.remaining()

    async def bounded() -> t.Any:
        timeout = asyncio.timeout(budget)
        try:
            async with timeout:
                return await func(*args)
        except TimeoutError:
            # Only the deadline's own timeout: a TimeoutError of the handler's is its failure.
            if timeout.expired():
                return _TIMED_OUT
            raise

    with deadlines.shielded():
        answer = app.ensure_sync(bounded)()
    if answer is _TIMED_OUT:
        raise HandlerTimeout(budget or 0.0)
    return answer


@dataclasses.dataclass(frozen=True)
class _Handler:
    func: RequestHandler
    platforms: frozenset[str] | None
    when: Predicate | None
    # Only coroutine functions need Flask's ensure_sync; checking once saves it per request.
    is_async: bool = False


@dataclasses.dataclass(frozen=True)
class _EventHandler:
    func: EventHandler
    type: str
    platforms: frozenset[str] | None


@dataclasses.dataclass(frozen=True)
class _State:
    """What one app needs at request time; stored in ``app.extensions["calltransfer"]``."""

    extension: CallTransfer
    settings: cfg.Settings
    platforms: dict[str, Platform]
    fallback: Destination | None
    services: Services
    #: Seconds the handlers may take, by platform name.
    timeouts: dict[str, float]
    #: The transfer log, when ``CALLTRANSFER_LOG_TRANSFERS`` is on.
    transfer_log: TransferLog | None = None
    #: Whether the store is the in-memory one ``TESTING`` chose, which the pytest plugin empties
    #: before each test.
    isolated_store: bool = False


#: The shortest dashboard token accepted: a guessable one would open the transfer log.
_MIN_TOKEN = 16

#: How long a transfer waits for its outcome, and an outcome is remembered as reported.
_OUTCOME_TTL = 6 * 3600


@functools.lru_cache(maxsize=4096)
def _shorthand(text: str, region: str | None) -> Destination:
    # Parsing a number with phonenumbers costs more than the rest of a request; handlers return
    # the same few strings again and again, and destinations are immutable.
    if text.startswith(("sip:", "sips:")):
        return SipDestination(text)
    return NumberDestination(text, region=region)


def _vapi_api_client(config: t.Mapping[str, t.Any], http: HttpClient) -> VapiApiClient | None:
    api_url = cfg.get_url(config, cfg.VAPI_API_URL)
    api_key = cfg.get_str(config, cfg.VAPI_API_KEY, optional=True)
    return VapiApiClient(http, api_url=api_url, api_key=api_key) if api_key else None


def _control_hosts(config: t.Mapping[str, t.Any]) -> HostAllowlist:
    value = config.get(cfg.VAPI_CONTROL_HOSTS)
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigurationError(
            messages.config_type(cfg.VAPI_CONTROL_HOSTS, "a list of host names or patterns", value),
            key=cfg.VAPI_CONTROL_HOSTS,
        )
    try:
        return HostAllowlist(value)
    except ValueError as exc:
        raise ConfigurationError(str(exc), key=cfg.VAPI_CONTROL_HOSTS) from None


def _voicedock_client(config: t.Mapping[str, t.Any], http: HttpClient) -> VoiceDockClient | None:
    api_url = cfg.get_url(config, cfg.VOICEDOCK_API_URL)
    api_key = cfg.get_str(config, cfg.VOICEDOCK_API_KEY, optional=True)
    return VoiceDockClient(http, api_url=api_url, api_key=api_key) if api_key else None


def _exempt_from_csrf(app: Flask, blueprints: t.Sequence[Blueprint]) -> None:
    """Exempt the webhooks (and the dashboard) from Flask-WTF's CSRF protection, if present.

    Platforms post JSON from their servers, with no CSRF token and no session: they prove who they
    are with the signature, which a cross-site form cannot forge. The dashboard's sign-in needs
    the token itself and its cookie is ``SameSite=Strict``.
    """

    def exempt() -> bool:
        csrf = app.extensions.get("csrf")
        if csrf is None or not callable(getattr(csrf, "exempt", None)):
            return False
        for blueprint in blueprints:
            csrf.exempt(blueprint)
        return True

    if exempt():
        return

    # CSRFProtect may be set up after this extension: its check then runs after this hook, which
    # exempts the blueprints on the first request. Flask refuses any setup (CSRFProtect's
    # init_app included) once an app has served a request, so the hook then takes itself out and
    # costs the app's later requests nothing. A new list, not a removal: Flask is iterating over
    # the old one right now.
    def exempt_once() -> None:
        exempt()
        hooks = app.before_request_funcs.get(None, [])
        app.before_request_funcs[None] = [hook for hook in hooks if hook is not exempt_once]

    app.before_request(exempt_once)


class CallTransfer:
    """The Flask-CallTransfer extension.

    Registers one webhook route per enabled platform at ``<CALLTRANSFER_URL_PREFIX>/<platform>``
    and answers each platform's "where should this call go?" with the decorated handlers.

    .. code-block:: python

        import os
        from flask import Flask
        from flask_calltransfer import CallTransfer

        transfers = CallTransfer()

        @transfers.on_request
        def route(call):
            if "sales" in call.text.lower():
                return "+31612345678"

        def create_app():
            app = Flask(__name__)
            app.config["CALLTRANSFER_VAPI_SECRET"] = os.environ["VAPI_SECRET"]
            transfers.init_app(app)
            return app

    Handlers and directory entries live on the extension, so they can be declared before
    ``init_app``, and one extension can serve several apps.

    :param app: the app to register with now; or call :meth:`init_app` later.
    :param platforms: the platform classes this extension offers; defaults to every built-in.
        ``CALLTRANSFER_PLATFORMS`` chooses among them per app.
    :param store: the :class:`~flask_calltransfer.store.Store` for state that outlives a request,
        shared by every app of this extension. Without it, each app builds the one
        ``CALLTRANSFER_STORE_URL`` names (default: a SQLite file in the app's instance folder).

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        platforms: t.Iterable[type[Platform]] | None = None,
        store: Store | None = None,
    ) -> None:
        self._handlers: list[_Handler] = []
        self._event_handlers: list[_EventHandler] = []
        self._error_handler: ErrorHandler | None = None
        self._directory: dict[str, Destination] = {}
        #: The pools made with :meth:`pool`, which ``flask calltransfer check`` checks.
        self.pools: list[DestinationPool] = []
        classes = list(platforms) if platforms is not None else list(BUILTIN_PLATFORMS.values())
        #: The platform classes on offer, by name.
        self.platform_classes: dict[str, type[Platform]] = {cls.name: cls for cls in classes}
        self._store = store
        if app is not None:
            self.init_app(app)

    # Registration ----------------------------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Register the extension on ``app``: apply and validate the config, add the routes.

        The configuration is read once, here. A missing secret, an unknown platform or an invalid
        fallback raises :class:`~flask_calltransfer.ConfigurationError` naming the key.

        :raises RuntimeError: if a ``CallTransfer`` is already registered on ``app``.
        """
        from . import views

        if "calltransfer" in app.extensions:
            raise RuntimeError(messages.already_registered())
        cfg.apply_defaults(app.config)
        settings = cfg.load(app.config)
        isolated = self._store is None and settings.store_url is None and app.testing
        if isolated:
            # Tests get a store of their own: never the development SQLite file, whose tool-call
            # and replay memories would make a rerun of the same test behave differently.
            store: Store = MemoryStore()
        else:
            store = self._store or from_url(
                settings.store_url or DEFAULT_URL,
                instance_path=app.instance_path,
                timeout=settings.store_timeout,
            )
        store.cooldown = settings.store_cooldown
        http = HttpClient(
            HttpSettings(
                timeout=settings.http_timeout,
                retries=settings.http_retries,
                budget=settings.delivery_timeout,
                max_response_bytes=settings.http_max_response_bytes,
                retry_server_errors=settings.http_retry_server_errors,
            )
        )
        services = Services(
            settings=settings,
            store=store,
            http=http,
            vapi=VapiControlClient(
                http,
                public_key=cfg.get_str(app.config, cfg.VAPI_PUBLIC_KEY, optional=True),
                allowlist=_control_hosts(app.config),
            ),
            voicedock=_voicedock_client(app.config, http),
            vapi_api=_vapi_api_client(app.config, http),
        )
        platforms = self._enabled_platforms(app.config, services)
        fallback = self._configured_fallback(app.config.get(cfg.FALLBACK), settings)
        timeouts = cfg.get_timeouts(
            app.config, cfg.HANDLER_TIMEOUT, {name: type(p).handler_timeout for name, p in platforms.items()}
        )
        if not settings.verify:
            logger.warning(messages.verification_disabled())
        log_transfers = cfg.get_bool(app.config, cfg.LOG_TRANSFERS)
        dashboard_tokens = cfg.get_secrets(app.config, cfg.DASHBOARD_TOKEN)
        if dashboard_tokens and not log_transfers:
            raise ConfigurationError(messages.dashboard_needs_log(), key=cfg.LOG_TRANSFERS)
        if any(len(token) < _MIN_TOKEN for token in dashboard_tokens):
            raise ConfigurationError(
                messages.config_token_too_short(cfg.DASHBOARD_TOKEN, _MIN_TOKEN), key=cfg.DASHBOARD_TOKEN
            )
        transfer_log = None
        if log_transfers:
            callers = cfg.get_choice(app.config, cfg.LOG_CALLERS, ("mask", "hash"))
            hash_key = cfg.get_secrets(app.config, cfg.LOG_HASH_KEY) or (
                (str(app.secret_key),) if app.secret_key else ()
            )
            if callers == "hash" and not hash_key:
                raise ConfigurationError(
                    messages.config_hash_without_key(cfg.LOG_CALLERS, cfg.LOG_HASH_KEY), key=cfg.LOG_CALLERS
                )
            transfer_log = TransferLog(
                store,
                retention=t.cast(float, cfg.get_number(app.config, cfg.LOG_RETENTION)),
                callers=callers,
                salt=hash_key[0] if hash_key else "",
            )
            transfer_log.connect(app)
        app.extensions["calltransfer"] = _State(
            self, settings, platforms, fallback, services, timeouts, transfer_log, isolated
        )
        blueprints = [views.make_blueprint(platforms)]
        if dashboard_tokens:
            from . import dashboard

            app.extensions["calltransfer_dashboard_tokens"] = tuple(
                token.encode() for token in dashboard_tokens
            )
            blueprints.append(dashboard.make_blueprint())
        for blueprint in blueprints:
            app.register_blueprint(blueprint, url_prefix=settings.url_prefix or None)
        _exempt_from_csrf(app, blueprints)
        from .cli import cli

        if cli.name not in app.cli.commands:
            app.cli.add_command(cli)

    def _enabled_platforms(self, config: t.Mapping[str, t.Any], services: Services) -> dict[str, Platform]:
        settings = services.settings
        chosen = config.get(cfg.PLATFORMS)
        if chosen is None:
            names = [
                name
                for name, cls in self.platform_classes.items()
                if not settings.verify or cls.has_credentials(config)
            ]
        else:
            if isinstance(chosen, str) or not isinstance(chosen, (list, tuple, set, frozenset)):
                raise ConfigurationError(
                    messages.config_type(cfg.PLATFORMS, "a list of platform names or None", chosen),
                    key=cfg.PLATFORMS,
                )
            names = list(dict.fromkeys(chosen))
            for name in names:
                if name not in self.platform_classes:
                    raise ConfigurationError(
                        messages.config_unknown_platform(cfg.PLATFORMS, name, self.platform_classes),
                        key=cfg.PLATFORMS,
                    )
        if not names:
            if chosen is not None:
                # Installed but off on purpose: the host app, its CLI and its tests go on as before.
                logger.info(messages.switched_off(cfg.PLATFORMS))
                return {}
            keys = [key for cls in self.platform_classes.values() for key in cls.credential_keys]
            raise ConfigurationError(messages.config_no_platform(keys), key=cfg.PLATFORMS)
        return {name: self.platform_classes[name].from_config(config, services) for name in names}

    def _configured_fallback(self, value: object, settings: cfg.Settings) -> Destination | None:
        if value is None:
            return None
        if isinstance(value, Destination):
            return value
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                messages.config_type(cfg.FALLBACK, "a directory name, number or SIP URI", value),
                key=cfg.FALLBACK,
            )
        text = value.strip()
        if not self._is_shorthand(text) and text not in self._directory:
            raise ConfigurationError(messages.config_fallback_name(cfg.FALLBACK, text), key=cfg.FALLBACK)
        try:
            return self._coerce(text, settings.default_region)
        except InvalidDestination as exc:
            raise ConfigurationError(
                messages.config_fallback(cfg.FALLBACK, str(exc)), key=cfg.FALLBACK
            ) from None

    @t.overload
    def on_request(self, func: T_request_handler, /) -> T_request_handler: ...

    @t.overload
    def on_request(
        self,
        func: None = None,
        /,
        *,
        platform: str | t.Iterable[str] | None = None,
        when: Predicate | None = None,
    ) -> t.Callable[[T_request_handler], T_request_handler]: ...

    def on_request(
        self,
        func: T_request_handler | None = None,
        /,
        *,
        platform: str | t.Iterable[str] | None = None,
        when: Predicate | None = None,
    ) -> T_request_handler | t.Callable[[T_request_handler], T_request_handler]:
        """Register a routing handler. Works with and without arguments.

        Handlers run in registration order; those whose ``platform`` or ``when`` does not match are
        skipped, and the first one to return something other than ``None`` decides. A handler
        returns a destination object; a string (``"+31..."`` or a national number for a number,
        ``"sip:..."`` for a SIP URI, anything else a name from :attr:`destinations`); or ``None``
        to let the next handler decide. ``async def`` handlers work too.

        .. code-block:: python

            VIP = {"+31612345678"}

            @transfers.on_request(platform="vapi", when=lambda call: call.caller in VIP)
            def vip(call):
                return SipDestination("sip:vip@pbx.example.com")

            @transfers.on_request
            def by_keyword(call):
                if "sales" in call.text.lower():
                    return "sales"

        :param platform: only run for this platform name, or these names.
        :param when: only run when this predicate returns true for the request.
        :return: the function, unchanged.
        """
        platforms = _platform_filter(platform)
        if when is not None and not callable(when):
            raise TypeError(messages.predicate_invalid(when))

        def register(f: T_request_handler) -> T_request_handler:
            self._handlers.append(_Handler(f, platforms, when, inspect.iscoroutinefunction(f)))
            return f

        if func is not None:
            return register(func)
        return register

    def on_error(self, func: T_error_handler) -> T_error_handler:
        """Register the handler called when a routing handler fails.

        It receives the request and the exception, and returns a destination (or a string
        shorthand), or ``None`` to use ``CALLTRANSFER_FALLBACK`` and then the refusal. It may call
        :func:`~flask_calltransfer.refuse`. There is one slot: registering again replaces it.

        .. code-block:: python

            @transfers.on_error
            def failed(call, exc):
                return "reception"

        :return: the function, unchanged.
        """
        self._error_handler = func
        return func

    def on_event(
        self, type: str, *, platform: str | t.Iterable[str] | None = None
    ) -> t.Callable[[T_event_handler], T_event_handler]:
        """Register a handler for another event arriving on a platform's webhook URL.

        The handler receives a :class:`~flask_calltransfer.PlatformEvent` and returns the reply
        body as a dict, or ``None`` for the platform's no-op answer. Handlers for one event type run
        in registration order until one returns a dict.

        .. code-block:: python

            ASSISTANTS = {"+31207948400": "5b1c3d0e-reception", "+31207948450": "8f2a9c41-sales"}

            @transfers.on_event("assistant-request", platform="vapi")
            def choose_assistant(event):
                return {"assistantId": ASSISTANTS[event.payload["phoneNumber"]["number"]]}

        :param type: the event type, as the platform spells it.
        :param platform: only for this platform name, or these names.
        :return: a decorator that returns the function unchanged.
        """
        if not isinstance(type, str) or not type:
            raise TypeError(messages.event_type_invalid(type))
        platforms = _platform_filter(platform)

        def register(f: T_event_handler) -> T_event_handler:
            self._event_handlers.append(_EventHandler(f, type, platforms))
            return f

        return register

    def add_destination(self, name: str, destination: Destination) -> None:
        """Add a named destination to the directory.

        Handlers return the name instead of the object, ``CALLTRANSFER_FALLBACK`` may name it, and
        the CLI checks every entry.

        .. code-block:: python

            transfers.add_destination(
                "sales", NumberDestination("+31 6 12345678", description="Pricing and quotes")
            )

        :param name: the name; replaces an earlier entry of the same name.
        :param destination: the destination object.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(messages.directory_name_invalid(name))
        if not isinstance(destination, Destination):
            raise TypeError(messages.directory_value_invalid(destination))
        name = name.strip()
        # Carrying its name, the destination shows up as "billing (number +3120****451)" in
        # signals, the transfer log, stats and the dashboard.
        self._directory[name] = dataclasses.replace(destination, directory_name=name)  # type: ignore[type-var]

    def pool(self, name: str, destinations: t.Sequence[Destination | str]) -> DestinationPool:
        """A :class:`~flask_calltransfer.DestinationPool` that ``flask calltransfer check`` knows
        about: every directory name it lists is checked with the directory.

        .. code-block:: python

            support_desk = transfers.pool("support", ["support-anna", "support-bram"])

        .. versionadded:: 0.1
        """
        pool = DestinationPool(name, destinations)
        self.pools.append(pool)
        return pool

    @property
    def store(self) -> Store:
        """The current app's store. Handlers may keep their own state in it too."""
        return self._state().services.store

    @property
    def vapi(self) -> VapiControlClient:
        """The current app's Vapi live call-control client.

        .. code-block:: python

            @transfers.on_request(platform="vapi")
            def hold_on(call):
                transfers.vapi.say(call.raw["call"]["monitor"]["controlUrl"], "One moment, please.")
        """
        return self._state().services.vapi

    @property
    def voicedock(self) -> VoiceDockClient:
        """The current app's VoiceDock API client; needs ``CALLTRANSFER_VOICEDOCK_API_KEY``.

        .. code-block:: python

            @transfers.on_request(platform="voicedock")
            def by_api(call):
                transfers.voicedock.transfer(call.call_id, "+31612345678", message="One moment.")
        """
        client = self._state().services.voicedock
        if client is None:
            raise RuntimeError(messages.voicedock_client_missing())
        return client

    @property
    def vapi_api(self) -> VapiApiClient:
        """The current app's Vapi REST API client; needs ``CALLTRANSFER_VAPI_API_KEY``."""
        client = self._state().services.vapi_api
        if client is None:
            raise RuntimeError(messages.vapi_api_client_missing())
        return client

    def voicedock_transfer_tool(self) -> dict[str, t.Any]:
        """VoiceDock's static ``transfer_call`` tool, built from the directory.

        Each number destination becomes one entry with its ``number``, ``description`` (the
        directory name when it has none) and ``message``. VoiceDock's tool takes numbers only, so
        other destinations are left out, with a log line; so are numbers that set what the tool
        cannot carry (a caller ID, an extension, a warm transfer plan), with a warning naming it,
        because installing them without it would transfer differently. Install it with
        ``transfers.voicedock.update_assistant_tools(assistant_id, [tool])``.
        """
        destinations = []
        for name, destination in self._directory.items():
            if not isinstance(destination, NumberDestination):
                logger.info(messages.tool_destination_skipped(name, destination.kind))
                continue
            unsupported = number_attributes_not_carried(destination)
            if unsupported:
                logger.warning(messages.tool_destination_cannot_carry(name, unsupported))
                continue
            entry = {
                "type": "number",
                "number": destination.number,
                "description": destination.description or name,
            }
            if destination.message:
                entry["message"] = destination.message
            destinations.append(entry)
        return {"type": "transfer_call", "destinations": destinations}

    def vapi_transfer_tool(self, name: str, *, description: str | None = None) -> dict[str, t.Any]:
        """Vapi's ``transferCall`` tool with no destinations: when the assistant calls it, Vapi asks
        this server for the destination with a ``transfer-destination-request``.

        :param name: the function name the assistant calls.
        :param description: tells the assistant's model when to call it.
        """
        function: dict[str, t.Any] = {
            "name": name,
            "description": description or messages.vapi_tool_description(),
            "parameters": {"type": "object", "properties": {}},
        }
        return {"type": "transferCall", "destinations": [], "function": function}

    @property
    def destinations(self) -> t.Mapping[str, Destination]:
        """The directory: a read-only view of the named destinations."""
        return types.MappingProxyType(self._directory)

    # Routing ---------------------------------------------------------------------------------------

    def _state(self) -> _State:
        state = current_app.extensions.get("calltransfer")
        if state is None or state.extension is not self:
            raise RuntimeError(messages.not_registered())
        return t.cast(_State, state)

    @staticmethod
    def _is_shorthand(text: str) -> bool:
        return text.startswith(("sip:", "sips:")) or phone.looks_like_number(text)

    def _coerce(self, value: object, region: str | None) -> Destination:
        """Turn a handler's answer into a destination, raising InvalidDestination if it is none."""
        if isinstance(value, Destination):
            return value
        if not isinstance(value, str):
            raise InvalidDestination(messages.destination_type_invalid(value))
        text = value.strip()
        if self._is_shorthand(text):
            return _shorthand(text, region)
        try:
            return self._directory[text]
        except KeyError:
            raise InvalidDestination(messages.directory_name_unknown(text, self._directory)) from None

    def resolve(self, call: TransferRequest) -> Destination:
        """Run the handlers for ``call`` and return the destination they choose.

        This is routing without HTTP, rendering or signals, for unit tests of an app's rules. It
        must run inside an app context of an app registered with this extension. When no handler
        answers, the configured fallback is returned.

        :raises TransferRefused: if a handler refuses, or nobody answers and there is no fallback.
        :raises Exception: whatever a handler raises; ``on_error`` is not consulted here.
        """
        state = self._state()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        answer, _ = self._run_handlers(app, call)
        if answer is not None:
            return self._coerce(answer, state.settings.default_region)
        if state.fallback is not None:
            return state.fallback
        raise TransferRefused(state.settings.refusal_message)

    def _run_handlers(
        self, app: Flask, call: TransferRequest, running: list[t.Any] | None = None
    ) -> tuple[HandlerResult, RequestHandler | None]:
        # ``running`` tells the caller which handler (or which handler's predicate) raised.
        for handler in self._handlers:
            if handler.platforms is not None and call.platform not in handler.platforms:
                continue
            if handler.when is not None:
                if running is not None:
                    running[:] = (handler.func, True)
                if not handler.when(call):
                    continue
            if running is not None:
                running[:] = (handler.func, False)
            if handler.is_async:
                answer: HandlerResult = _run_async(app, handler.func, call)
            else:
                answer = t.cast(HandlerResult, handler.func(call))
            if answer is not None:
                return answer, handler.func
        return None, None

    def _route(self, app: Flask, state: _State, platform: Platform, call: TransferRequest) -> Response:
        """The whole routing path for one request. Always returns the platform's valid answer."""
        try:
            return self._route_steps(app, state, platform, call)
        except Exception as exc:
            # A bug of ours, or a part that failed where nothing expected it: the call still gets
            # its own refusal (a tool call its id), not the blueprint's bare last resort.
            logger.exception(messages.route_failed(repr(call)))
            signals.transfer_failed.send(app, call=call, exception=exc, stage="internal")
            return self._refuse(app, platform, call, state.settings.refusal_message)

    def _route_steps(self, app: Flask, state: _State, platform: Platform, call: TransferRequest) -> Response:
        window = state.settings.replay_window
        remembered = platform.remembers_answers and call.tool_call_id is None
        if not (window and remembered and has_request_context()):
            return self._route_once(app, state, platform, call)
        # A captured request sent again gets the first answer: routing it again would move pools,
        # log transfers and signal twice. A platform's own retry gets the same answer, as it should.
        replays = Ledger(state.services.store, platform.name, namespace="replay", ttl=window)
        key = hashlib.sha256(request.get_data(cache=True)).hexdigest()
        first = replays.claim(key, wait=state.timeouts[platform.name])
        if isinstance(first, str):
            logger.info(messages.replay_answered(platform.name, repr(call)))
            return Response(first, mimetype="application/json")
        response = self._route_once(app, state, platform, call)
        if response.status_code == 200 and response.mimetype == "application/json":
            replays.remember(key, response)
        return response

    def _route_once(self, app: Flask, state: _State, platform: Platform, call: TransferRequest) -> Response:
        owed = platform.owed(call)
        if owed is not None:
            return owed
        started = time.perf_counter()
        signals.transfer_requested.send(app, call=call)
        if not self._handlers:
            logger.warning(messages.no_handlers())
        timeout = state.timeouts[platform.name]
        running: list[t.Any] = [None, False]
        try:
            answer, handler = call_with_deadline(
                lambda: self._run_handlers(app, call, running), self._remaining(call, timeout)
            )
        except TransferRefused as refusal:
            return self._refuse(app, platform, call, refusal.reason)
        except HandlerTimeout:
            # Reported with the configured timeout, not the part of it left after parsing.
            expired = HandlerTimeout(timeout)
            logger.error(messages.handler_timeout(_running_name(running), repr(call), timeout))
            signals.transfer_failed.send(app, call=call, exception=expired, stage="timeout")
            return self._recover(app, state, platform, call, expired, started)
        except Exception as exc:
            logger.exception(messages.handler_failed(_running_name(running), repr(call)))
            signals.transfer_failed.send(app, call=call, exception=exc, stage="handler")
            return self._recover(app, state, platform, call, exc, started)
        if answer is None:
            response = platform.no_answer(call)
            if response is not None:
                logger.info("Transfer %s on %s deferred: no handler answered.", call.call_id, call.platform)
                signals.transfer_deferred.send(app, call=call)
                return response
            return self._fallback(app, state, platform, call, started)
        try:
            destination = self._coerce(answer, state.settings.default_region)
            return self._send(app, platform, call, destination, handler, started)
        except (InvalidDestination, UnsupportedDestination) as exc:
            logger.error(messages.destination_failed(_name(handler), repr(call), str(exc)))
            signals.transfer_failed.send(app, call=call, exception=exc, stage="destination")
            return self._recover(app, state, platform, call, exc, started)

    @staticmethod
    def _remaining(call: TransferRequest, timeout: float) -> float:
        # The deadline counts from the request's arrival; parsing took some of it already.
        return max(call.received + timeout - time.monotonic(), 0.001)

    def _recover(
        self,
        app: Flask,
        state: _State,
        platform: Platform,
        call: TransferRequest,
        exc: Exception | HandlerTimeout,
        started: float,
    ) -> Response:
        """The failure path: ``on_error``, then the fallback, then the refusal.

        ``on_error`` gets what is left of the deadline, and at least a short grace period when
        the handlers used it all up.
        """
        error_handler = self._error_handler
        if error_handler is not None:
            timeout = state.timeouts[platform.name]
            grace = max(self._remaining(call, timeout), min(1.0, timeout / 4))
            try:
                answer = call_with_deadline(lambda: _run_async(app, error_handler, call, exc), grace)
                if answer is not None:
                    destination = self._coerce(answer, state.settings.default_region)
                    return self._send(app, platform, call, destination, error_handler, started)
            except TransferRefused as refusal:
                return self._refuse(app, platform, call, refusal.reason)
            except HandlerTimeout as second:
                logger.error(messages.error_handler_timeout(_name(error_handler), repr(call), grace))
                signals.transfer_failed.send(app, call=call, exception=second, stage="on_error")
            except Exception as second:
                logger.exception(messages.error_handler_failed(_name(error_handler), repr(call)))
                signals.transfer_failed.send(app, call=call, exception=second, stage="on_error")
        return self._fallback(app, state, platform, call, started)

    def _fallback(
        self, app: Flask, state: _State, platform: Platform, call: TransferRequest, started: float
    ) -> Response:
        if state.fallback is not None:
            try:
                return self._send(app, platform, call, state.fallback, None, started)
            except UnsupportedDestination as exc:
                logger.error(messages.fallback_failed(repr(call), str(exc)))
                signals.transfer_failed.send(app, call=call, exception=exc, stage="fallback")
        return self._refuse(app, platform, call, state.settings.refusal_message)

    def _send(
        self,
        app: Flask,
        platform: Platform,
        call: TransferRequest,
        destination: Destination,
        handler: t.Callable[..., t.Any] | None,
        started: float,
    ) -> Response:
        """Render (and, for API platforms, deliver) a destination.

        A failed delivery is answered here, in the platform's format: the destination was valid, so
        trying another one would not help. What the platform cannot carry raises
        :class:`UnsupportedDestination` for the caller's failure path.
        """
        try:
            response = platform.render(call, destination)
        except DeliveryFailed as exc:
            logger.error(str(exc))
            signals.transfer_failed.send(app, call=call, exception=exc, stage="deliver")
            return platform.render(call, exc)
        elapsed = time.perf_counter() - started
        if call.call_id and signals.transfer_outcome.has_receivers_for(app):
            # Remembered so that the end of the call can be reported as this transfer's outcome.
            with bookkeeping("tracking a transfer's outcome"):
                self._state().services.store.set(
                    self._outcome_key(call.platform, call.call_id), "1", ttl=_OUTCOME_TTL
                )
        if logger.isEnabledFor(logging.INFO):
            # Describing the destination masks its number: work a disabled log line need not do.
            logger.info(
                "Transfer %s on %s resolved to %s by %s in %.1f ms.",
                call.call_id,
                call.platform,
                destination.describe(),
                _name(handler),
                elapsed * 1000,
            )
        signals.transfer_resolved.send(
            app, call=call, destination=destination, handler=handler, elapsed=elapsed
        )
        return response

    def _refuse(self, app: Flask, platform: Platform, call: TransferRequest, reason: str) -> Response:
        logger.info("Transfer %s on %s refused.", call.call_id, call.platform)
        signals.transfer_refused.send(app, call=call, reason=reason)
        return platform.render(call, TransferRefused(reason))

    @staticmethod
    def _outcome_key(platform: str, call_id: str) -> str:
        return f"outcome:{platform}:{call_id}"

    def _report_outcome(self, app: Flask, platform: Platform, event: PlatformEvent) -> None:
        # Outcomes are tracked only while someone listens: it costs a store write per transfer.
        if not event.call_id or not signals.transfer_outcome.has_receivers_for(app):
            return
        found = platform.outcome(event)
        if found is None:
            return
        store = self._state().services.store
        key = self._outcome_key(platform.name, event.call_id)
        with bookkeeping("reporting a transfer's outcome"):
            transferred = store.pop(key) is not None
            # Several events may tell of one transfer (Vapi's transfer-update, then the call's end):
            # the first one is reported, on whichever worker it arrives.
            if not (found.definite or transferred) or store.incr(key + ":reported", ttl=_OUTCOME_TTL) != 1:
                return
        signals.transfer_outcome.send(
            app, platform=platform.name, call_id=event.call_id, outcome=found.outcome, detail=found.detail
        )

    def _event(self, app: Flask, platform: Platform, event: PlatformEvent) -> Response:
        """Answer an event that is not a transfer request."""
        state = self._state()
        signals.event_received.send(app, platform=platform.name, event=event.type, payload=event.payload)
        self._report_outcome(app, platform, event)
        owed = platform.owed(event)
        if owed is not None:
            return owed
        reply: dict[str, t.Any] | None = None
        for handler in self._event_handlers:
            if handler.type != event.type:
                continue
            if handler.platforms is not None and platform.name not in handler.platforms:
                continue
            func = handler.func
            try:
                answer = call_with_deadline(
                    lambda: _run_async(app, func, event),  # noqa: B023 - called at once
                    state.timeouts.get(platform.name),
                )
            except HandlerTimeout:
                logger.error(messages.event_handler_timeout(_name(func), event.type))
                break
            except Exception:
                logger.exception(messages.event_handler_failed(_name(func), event.type))
                break
            if answer is None:
                continue
            if not isinstance(answer, t.Mapping):
                logger.error(messages.event_reply_invalid(_name(handler.func), answer))
                break
            reply = dict(answer)
            break
        try:
            return platform.render_event(event, reply)
        except (TypeError, ValueError):
            logger.error(messages.event_reply_invalid("reply", reply))
            return platform.render_event(event, None)

    def __repr__(self) -> str:
        try:
            names = ", ".join(self._state().platforms)
        except RuntimeError:
            return f"<CallTransfer handlers={len(self._handlers)}>"
        return f"<CallTransfer platforms=[{names}] handlers={len(self._handlers)}>"
