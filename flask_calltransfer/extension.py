"""The :class:`CallTransfer` extension: registration, configuration and routing."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing as t

from flask import Blueprint
from flask import Flask
from flask import current_app

from . import config as cfg
from . import dispatch
from . import messages
from . import state as app_state
from .analytics import TransferLog
from .callbacks import CallbackBook
from .clients import HttpClient
from .clients import HttpSettings
from .clients import VapiApiClient
from .clients import VapiControlClient
from .clients import VoiceDockClient
from .exceptions import ConfigurationError
from .exceptions import InvalidDestination
from .failover import Failover
from .handlers import AvailabilityCheck as AvailabilityCheck
from .handlers import ErrorHandler as ErrorHandler
from .handlers import EventHandler as EventHandler
from .handlers import EventHook
from .handlers import Handler
from .handlers import Line
from .handlers import Predicate as Predicate
from .handlers import Registry
from .handlers import RequestHandler as RequestHandler
from .handlers import T_availability
from .handlers import T_error_handler
from .handlers import T_event_handler
from .handlers import T_request_handler
from .handlers import is_shorthand
from .handlers import platform_filter
from .logs import logger
from .models import Destination
from .models import TransferRequest
from .platforms import Platform
from .platforms import installed_platforms
from .platforms.base import Services
from .platforms.vapi import transfer_tool as vapi_transfer_tool
from .platforms.voicedock import transfer_tool as voicedock_transfer_tool
from .routing import DestinationPool
from .screenpop import ScreenPop
from .state import State
from .store import DEFAULT_URL
from .store import MemoryStore
from .store import Store
from .store import from_url

#: The shortest dashboard token accepted: a guessable one would open the transfer log.
_MIN_TOKEN = 16


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
    :param platforms: the platform classes this extension offers; defaults to every built-in one
        and every one an installed distribution offers through the ``flask_calltransfer.platforms``
        entry point (:func:`~flask_calltransfer.platforms.installed_platforms`).
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
        #: The handlers, the directory and the pools, shared by every app of this extension.
        self.registry = Registry()
        #: The pools made with :meth:`pool`, which ``flask calltransfer check`` checks.
        self.pools = self.registry.pools
        classes = list(platforms) if platforms is not None else list(installed_platforms().values())
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
        for cls in self.platform_classes.values():
            # A platform from another distribution brings its own keys and their defaults.
            for key, value in cls.config_defaults.items():
                app.config.setdefault(key, value)
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
            # Every platform on offer brings its clients, enabled or not: an app's own code may
            # call an API whose webhooks this app does not serve.
            clients={
                name: client
                for cls in self.platform_classes.values()
                for name, client in cls.build_clients(app.config, http).items()
            },
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
        app.extensions[app_state.KEY] = State(
            extension=self,
            registry=self.registry,
            settings=settings,
            platforms=platforms,
            offered=dict(self.platform_classes),
            fallback=fallback,
            services=services,
            timeouts=timeouts,
            transfer_log=transfer_log,
            isolated_store=isolated,
            failover=Failover(services.store, self.registry, hold=settings.capacity_hold),
            callbacks=CallbackBook(services.store),
            screenpop=ScreenPop(
                services.store,
                cfg.get_handoff_secrets(app.config),
                ttl=settings.handoff_ttl,
                prefix=settings.url_prefix,
                base_url=settings.handoff_url,
            ),
        )
        handoff_links = app.extensions[app_state.KEY].screenpop.enabled
        blueprints = [views.make_blueprint(platforms, handoff_links=handoff_links)]
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
        if not is_shorthand(text) and text not in self.registry.directory:
            raise ConfigurationError(messages.config_fallback_name(cfg.FALLBACK, text), key=cfg.FALLBACK)
        try:
            return self.registry.coerce(text, settings.default_region)
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
        platforms = platform_filter(platform)
        if when is not None and not callable(when):
            raise TypeError(messages.predicate_invalid(when))

        def register(f: T_request_handler) -> T_request_handler:
            self.registry.handlers.append(Handler(f, platforms, when, inspect.iscoroutinefunction(f)))
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
        self.registry.error_handler = func
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
        platforms = platform_filter(platform)

        def register(f: T_event_handler) -> T_event_handler:
            self.registry.event_hooks.append(EventHook(f, type, platforms))
            return f

        return register

    def add_destination(
        self,
        name: str,
        destination: Destination,
        *,
        max_concurrent: int | None = None,
        available: t.Callable[[TransferRequest], bool] | None = None,
    ) -> None:
        """Add a named destination to the directory.

        Handlers return the name instead of the object, ``CALLTRANSFER_FALLBACK`` may name it, and
        the CLI checks every entry.

        .. code-block:: python

            transfers.add_destination(
                "sales", NumberDestination("+31 6 12345678", description="Pricing and quotes")
            )

        :param name: the name; replaces an earlier entry of the same name.
        :param destination: the destination object.
        :param max_concurrent: how many calls it takes at once, counted in the store across every
            worker: a transfer holds a place until its outcome says it did not connect, or for
            ``CALLTRANSFER_CAPACITY_HOLD`` seconds. A full destination is skipped.
        :param available: a predicate ``(call) -> bool``, such as a
            :class:`~flask_calltransfer.BusinessHours`; when it says ``False`` the destination is
            skipped.

        .. versionchanged:: 0.1
            ``max_concurrent`` and ``available``.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(messages.directory_name_invalid(name))
        if not isinstance(destination, Destination):
            raise TypeError(messages.directory_value_invalid(destination))
        if max_concurrent is not None and (
            isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1
        ):
            raise ValueError(messages.max_concurrent_invalid(max_concurrent))
        if available is not None and not callable(available):
            raise TypeError(messages.available_invalid(available))
        name = name.strip()
        # Carrying its name, the destination shows up as "billing (number +3120****451)" in
        # signals, the transfer log, stats and the dashboard.
        self.registry.directory[name] = dataclasses.replace(destination, directory_name=name)  # type: ignore[type-var]
        if max_concurrent is not None or available is not None:
            self.registry.lines[name] = Line(max_concurrent=max_concurrent, available=available)
        else:
            self.registry.lines.pop(name, None)

    def availability(self, func: T_availability) -> T_availability:
        """Register the app's availability check: ``(destination, call) -> bool``, asked before
        any destination is sent (a queue, a CRM or a presence system). A destination it says
        ``False`` for is skipped, with the ``destination_skipped`` signal and a log line; one that
        makes it raise, or run past the handlers' deadline, counts as available. There is one slot:
        registering again replaces it.

        .. code-block:: python

            @transfers.availability
            def free(destination, call):
                return destination.directory_name not in busy_agents()

        :return: the function, unchanged.

        .. versionadded:: 0.1
        """
        self.registry.availability = func
        return func

    def pool(self, name: str, destinations: t.Sequence[Destination | str]) -> DestinationPool:
        """A :class:`~flask_calltransfer.DestinationPool` that ``flask calltransfer check`` knows
        about: every directory name it lists is checked with the directory.

        .. code-block:: python

            support_desk = transfers.pool("support", ["support-anna", "support-bram"])

        .. versionadded:: 0.1
        """
        pool = DestinationPool(name, destinations)
        self.registry.pools.append(pool)
        return pool

    @property
    def store(self) -> Store:
        """The current app's store. Handlers may keep their own state in it too."""
        return self._state().services.store

    @property
    def callbacks(self) -> CallbackBook:
        """The current app's callback tasks (:class:`~flask_calltransfer.callbacks.CallbackBook`):
        list, claim and complete them.

        .. versionadded:: 0.1
        """
        return self._state().callbacks

    @property
    def vapi(self) -> VapiControlClient:
        """The current app's Vapi live call-control client.

        .. code-block:: python

            @transfers.on_request(platform="vapi")
            def hold_on(call):
                transfers.vapi.say(call.raw["call"]["monitor"]["controlUrl"], "One moment, please.")
        """
        return t.cast(VapiControlClient, self._state().services.clients["vapi"])

    @property
    def voicedock(self) -> VoiceDockClient:
        """The current app's VoiceDock API client; needs ``CALLTRANSFER_VOICEDOCK_API_KEY``.

        .. code-block:: python

            @transfers.on_request(platform="voicedock")
            def by_api(call):
                transfers.voicedock.transfer(call.call_id, "+31612345678", message="One moment.")
        """
        client = self._state().services.clients.get("voicedock")
        if client is None:
            raise RuntimeError(messages.voicedock_client_missing())
        return t.cast(VoiceDockClient, client)

    @property
    def vapi_api(self) -> VapiApiClient:
        """The current app's Vapi REST API client; needs ``CALLTRANSFER_VAPI_API_KEY``."""
        client = self._state().services.clients.get("vapi_api")
        if client is None:
            raise RuntimeError(messages.vapi_api_client_missing())
        return t.cast(VapiApiClient, client)

    @property
    def clients(self) -> t.Mapping[str, object]:
        """The current app's outbound API clients, by name, as the platforms on offer build them
        (:meth:`Platform.build_clients <flask_calltransfer.Platform.build_clients>`): ``"vapi"``,
        and ``"vapi_api"`` and ``"voicedock"`` when their API keys are set.

        .. versionadded:: 0.1
        """
        return types.MappingProxyType(self._state().services.clients)

    def voicedock_transfer_tool(self) -> dict[str, t.Any]:
        """VoiceDock's static ``transfer_call`` tool, built from the directory.

        Each number destination becomes one entry with its ``number``, ``description`` (the
        directory name when it has none) and ``message``. VoiceDock's tool takes numbers only, so
        other destinations are left out, with a log line; so are numbers that set what the tool
        cannot carry (a caller ID, an extension, a warm transfer plan), with a warning naming it,
        because installing them without it would transfer differently. Install it with
        ``transfers.voicedock.update_assistant_tools(assistant_id, [tool])``.
        """
        return voicedock_transfer_tool(self.registry.directory)

    def vapi_transfer_tool(self, name: str, *, description: str | None = None) -> dict[str, t.Any]:
        """Vapi's ``transferCall`` tool with no destinations: when the assistant calls it, Vapi asks
        this server for the destination with a ``transfer-destination-request``.

        :param name: the function name the assistant calls.
        :param description: tells the assistant's model when to call it.
        """
        return vapi_transfer_tool(name, description=description)

    @property
    def destinations(self) -> t.Mapping[str, Destination]:
        """The directory: a read-only view of the named destinations."""
        return types.MappingProxyType(self.registry.directory)

    # Routing ---------------------------------------------------------------------------------------

    def _state(self) -> State:
        return app_state.get(owner=self)

    def resolve(self, call: TransferRequest) -> Destination:
        """Run the handlers for ``call`` and return the destination they choose.

        This is routing without HTTP, rendering or signals, for unit tests of an app's rules. It
        must run inside an app context of an app registered with this extension. When no handler
        answers, the configured fallback is returned.

        :raises TransferRefused: if a handler refuses, or nobody answers and there is no fallback.
        :raises Exception: whatever a handler raises; ``on_error`` is not consulted here.
        """
        state = self._state()
        return dispatch.resolve(current_app._get_current_object(), state, call)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        try:
            names = ", ".join(self._state().platforms)
        except RuntimeError:
            return f"<CallTransfer handlers={len(self.registry.handlers)}>"
        return f"<CallTransfer platforms=[{names}] handlers={len(self.registry.handlers)}>"
