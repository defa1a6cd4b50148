"""The ``flask calltransfer`` commands: see, check and try the routing without placing a call."""

from __future__ import annotations

import json
import typing as t
import uuid

import click
from flask import Flask
from flask import current_app
from flask.cli import AppGroup
from flask.cli import with_appcontext

from . import messages
from . import payloads as testing
from . import phone
from . import state as app_state
from .exceptions import StoreUnavailable
from .exceptions import UnsupportedDestination
from .models import AssistantDestination
from .models import Destination
from .models import NumberDestination
from .models import SipDestination
from .platforms.toolcalls import ToolCallPlatform
from .platforms.toolcalls import dry_run
from .platforms.vapi import transfer_tool as vapi_transfer_tool
from .platforms.voicedock import transfer_tool as voicedock_transfer_tool

if t.TYPE_CHECKING:
    from .state import State

cli = AppGroup("calltransfer", help="See, check and try Flask-CallTransfer's call routing.")


def _state() -> State:
    state = app_state.find(current_app._get_current_object())  # type: ignore[attr-defined]
    if state is None:
        raise click.ClickException("This app has no CallTransfer extension: call transfers.init_app(app).")
    return state


def _name(func: t.Callable[..., t.Any]) -> str:
    return f"{func.__module__}.{getattr(func, '__qualname__', repr(func))}"


def describe(destination: Destination) -> str:
    """A destination in one line, in full: the directory holds the app's own numbers."""
    if isinstance(destination, NumberDestination):
        text = f"number {destination.number}" + ("" if destination.e164 else " (no E.164 check)")
    elif isinstance(destination, SipDestination):
        text = f"SIP {destination.uri}" + (
            f" headers {dict(destination.headers)}" if destination.headers else ""
        )
    elif isinstance(destination, AssistantDestination):
        text = f"assistant {destination.name!r}"
    else:
        text = repr(destination)
    details = [
        f"{attribute}={getattr(destination, attribute)!r}"
        for attribute in ("message", "caller_id", "caller_id_name", "extension", "mode", "history")
        if getattr(destination, attribute, None) is not None
    ]
    return " ".join([text, *details])


@cli.command("routes")
def routes() -> None:
    """Show the webhook URLs, their verification, the handlers and the directory."""
    state = _state()
    registry = state.registry
    click.echo("Webhooks:")
    for name, platform in state.platforms.items():
        tools: frozenset[str] = getattr(platform, "tools", frozenset())
        extra = f", transfer tools {', '.join(sorted(tools))}" if tools else ""
        click.echo(
            f"  POST {state.settings.url_prefix}/{name:<10} verification: {platform.describe_verification()},"
            f" handler timeout {state.timeouts[name]:g} s{extra}"
        )
    click.echo("Handlers, in the order they are asked:")
    for handler in registry.handlers:
        filters = []
        if handler.platforms is not None:
            filters.append(f"platform={','.join(sorted(handler.platforms))}")
        if handler.when is not None:
            filters.append(f"when={_name(handler.when)}")
        click.echo(f"  {_name(handler.func)}" + (f" ({'; '.join(filters)})" if filters else ""))
    if not registry.handlers:
        click.echo("  none: every transfer request is refused. Add one with @transfers.on_request.")
    if registry.error_handler is not None:
        click.echo(f"  on_error: {_name(registry.error_handler)}")
    for event_handler in registry.event_hooks:
        scope = f" ({','.join(sorted(event_handler.platforms))})" if event_handler.platforms else ""
        click.echo(f"  on_event {event_handler.type!r}{scope}: {_name(event_handler.func)}")
    click.echo("Fallback: " + (describe(state.fallback) if state.fallback else "none (refuse)"))
    click.echo("Directory:")
    for name, destination in registry.directory.items():
        click.echo(f"  {name}: {describe(destination)}")
    if not registry.directory:
        click.echo("  empty")


def _payload(
    platform: str,
    text: str,
    caller: str | None,
    event: str | None,
    tool: str | None,
    arguments: t.Any,
    call_id: str | None = None,
) -> dict[str, t.Any]:
    fields: dict[str, t.Any] = {"caller": caller} if caller else {}
    if call_id is not None:
        fields["session_id" if platform == "sipgate" else "call_id"] = call_id
    if platform == "vapi":
        if tool:
            return testing.vapi_tool_calls(
                tool, arguments, text=text, control_url="http://127.0.0.1:9/control", **fields
            )
        if event and event != "transfer-destination-request":
            return testing.vapi_event(event)
        return testing.vapi_transfer_request(text=text, **fields)
    if platform == "sipgate":
        return testing.sipgate_event(event or "user_speak", text=text, **fields)
    if tool:
        return testing.voicedock_tool_calls(tool, arguments, **fields)
    return testing.voicedock_event(event or "status-update", **fields)


#: What ``simulate --fail`` can script, as each platform reports it.
FAILURES = ("busy", "no-answer", "voicemail", "failed")


def _failure(
    platform: str, call_id: str, outcomes: list[str], first: dict[str, t.Any]
) -> dict[str, t.Any] | None:
    """The request or event that tells ``platform`` the call's transfers so far ended
    ``outcomes``, the latest last; ``None`` where the platform has no way to say so."""
    if platform == "vapi" and first["message"]["type"] == "transfer-destination-request":
        # The assistant stayed on the call and asks again; the artifact lists its transfers.
        again = json.loads(json.dumps(first))
        again["message"].setdefault("artifact", {})["transfers"] = [{"status": o} for o in outcomes]
        return t.cast(dict[str, t.Any], again)
    if platform == "voicedock":
        # VoiceDock's status updates say only that the transfer failed; each is an event of its own.
        return testing.voicedock_event(
            "status-update", call_id=call_id, status="failed", detail=outcomes[-1], seq=len(outcomes)
        )
    return None


def _play(app: Flask, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, bool]:
    """Post in this process, printing what the handlers decided and what would be sent; also
    whether a transfer attempt was made."""
    with testing.record_signals(app) as heard, dry_run() as commands:
        reply = app.test_client().post(path, data=body, headers=headers)
    # In the order they happened: a failing handler comes before the refusal it led to.
    for name, _, sent in heard.events:
        if name == "transfer-resolved":
            handler = sent["handler"]
            by = _name(handler) if handler else "CALLTRANSFER_FALLBACK"
            click.echo(f"Resolved: {describe(sent['destination'])} (by {by})")
        elif name == "transfer-refused":
            click.echo(f"Refused: {sent['reason']}")
        elif name == "transfer-deferred":
            click.echo("No transfer now: no handler answered, and the conversation goes on.")
        elif name == "transfer-failed":
            click.echo(f"Failed ({sent['stage']}): {sent['exception']}")
        elif name == "destination-skipped":
            click.echo(f"Skipped: {describe(sent['destination'])} ({sent['reason']})")
        elif name == "transfer-attempted":
            attempt = sent["attempt"]
            click.echo(f"Attempt {attempt.number}: {describe(sent['destination'])}")
        elif name == "transfer-finished":
            click.echo(f"Finished: {sent['outcome']} after {len(sent['attempts'])} attempt(s)")
    for call, destination in commands:
        click.echo(f"Would send through {call.platform}'s call-control API: {describe(destination)}")
    return reply.status_code, reply.get_data(), bool(heard.named("transfer-attempted"))


@cli.command("simulate")
@click.argument("platform", type=click.Choice(["vapi", "sipgate", "voicedock"]))
@click.argument("text", required=False, default="")
@click.option("--caller", help="The caller's number, such as +31612345678.")
@click.option("--event", help="The event type, such as status-update or session_start.")
@click.option("--tool", help="Send a tool call of this tool instead.")
@click.option("--args", "arguments", help="The tool call's arguments, as JSON.")
@click.option("--url", help="Send to this running server instead of the app in this process.")
@click.option(
    "--fail",
    "failures",
    multiple=True,
    type=click.Choice(FAILURES),
    help="After the first transfer, play it failing this way and show the next destination"
    " (repeat for a second failure, and so on).",
)
@click.option(
    "--live",
    is_flag=True,
    help="With --url and --tool: send the tool call although the server will then ask the"
    " platform's call-control API to transfer a (made-up) call, with its real API key.",
)
def simulate(
    platform: str,
    text: str,
    caller: str | None,
    event: str | None,
    tool: str | None,
    arguments: str | None,
    url: str | None,
    live: bool,
    failures: tuple[str, ...] = (),
) -> None:
    """Send a realistic, correctly signed request and show what the platform would get.

    In this process, tool calls are not sent to the platform's call-control API: the command that
    would be sent is shown instead. Exits with 1 when the platform would not accept the reply.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = _state()
    try:
        decoded_arguments = json.loads(arguments) if arguments else None
    except ValueError as exc:
        raise click.BadParameter(f"--args is not valid JSON ({exc}).") from None
    if platform == "voicedock" and not tool and not event and state.platforms.get("voicedock"):
        tools = sorted(getattr(state.platforms["voicedock"], "tools", ()))
        tool = tools[0] if tools else None
    call_id = f"simulated-{uuid.uuid4()}"
    first = _payload(platform, text, caller, event, tool, decoded_arguments, call_id)
    body = testing.dumps(first)
    path = f"{state.settings.url_prefix}/{platform}"
    if failures and url is not None:
        raise click.ClickException("--fail plays in this process only: leave out --url.")
    if url is not None and tool and not live:
        raise click.ClickException(
            "A tool call sent to a running server is executed there: the server asks the platform's"
            " call-control API to transfer the call, with its real API key. Leave out --url to see"
            " the command it would send, or add --live to send it (against a staging server)."
        )
    if url is not None:
        import httpx

        target = url if url.rstrip("/").endswith(path) else url.rstrip("/") + path
        headers = testing.signed_headers(app.config, platform, body, url=target)
        try:
            answer = httpx.post(target, content=body, headers=headers, timeout=30)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"Could not reach {target}: {exc}. Is the server running?") from None
        status, data = answer.status_code, answer.content
    else:
        if platform not in state.platforms:
            raise click.ClickException(
                f"{platform} is not enabled in this app; set its credentials"
                " (see 'flask calltransfer check')."
            )
        local = f"http://localhost{path}"
        status, data, attempted = _play(
            app, path, body, testing.signed_headers(app.config, platform, body, url=local)
        )
        played: list[str] = []
        for outcome in failures:
            if not attempted:
                click.echo(
                    "--fail plays a failed attempt of a DestinationChain, and no attempt was made:"
                    " the handlers answered no chain, or this was not a transfer request."
                )
                break
            played.append(outcome)
            follow = _failure(platform, call_id, played, first)
            if follow is None:
                click.echo(f"{platform} never reports a failed transfer: only the first destination is used.")
                break
            click.echo(f"The transfer ends {outcome}:")
            follow_body = testing.dumps(follow)
            headers = testing.signed_headers(app.config, platform, follow_body, url=local)
            status, data, attempted = _play(app, path, follow_body, headers)
    click.echo(f"Reply: HTTP {status}")
    if data:
        try:
            click.echo(json.dumps(json.loads(data), indent=2, ensure_ascii=False))
        except ValueError:
            click.echo(data.decode(errors="replace"))
    problems = testing.reply_problems(platform, status, data)
    for problem in problems:
        click.echo(f"Problem: {problem}", err=True)
    if problems:
        raise SystemExit(1)


def _number_problems(name: str, destination: NumberDestination) -> list[str]:
    if not destination.e164:
        return []
    kind = phone.number_type(destination.number)
    if kind in ("premium rate", "unknown"):
        return [
            f"Directory entry {name!r}: {destination.number} is a {kind} number; check that callers"
            " may be transferred there, or use another number."
        ]
    return []


@cli.command("check")
def check() -> None:
    """Check the directory, the platforms' configuration, and what each platform can carry.

    Exits with 1 and a sentence per problem when something needs fixing.
    """
    state = _state()
    problems: list[str] = []
    if not state.settings.verify:
        problems.append(
            "CALLTRANSFER_VERIFY_REQUESTS is False: anyone can post to the webhooks. Turn verification on"
            " and set each platform's secret before going live."
        )
    if not state.registry.handlers:
        problems.append("No @transfers.on_request handler is registered, so every transfer is refused.")
    for name, platform in state.platforms.items():
        if name == "voicedock" and not getattr(platform, "tools", None):
            problems.append(
                "VoiceDock is enabled but CALLTRANSFER_VOICEDOCK_TOOLS is empty, so its assistants cannot ask"
                " for a transfer. Name your transfer tool there."
            )
    entries = list(state.registry.directory.items())
    if state.fallback is not None:
        entries.append(("CALLTRANSFER_FALLBACK", state.fallback))
    for name, destination in entries:
        if isinstance(destination, NumberDestination):
            problems += _number_problems(name, destination)
        if isinstance(destination, SipDestination):
            try:
                SipDestination(destination.uri, headers=destination.headers)
            except ValueError as exc:
                problems.append(f"Directory entry {name!r}: {exc}")
        for platform_name, platform in state.platforms.items():
            try:
                platform.check(destination)
                if isinstance(platform, ToolCallPlatform) and platform.tools:
                    platform.check_delivery(destination)
            except UnsupportedDestination as exc:
                problems.append(f"Directory entry {name!r} on {platform_name}: {exc}")
    for pool in state.registry.pools:
        for entry in pool.destinations:
            try:
                state.registry.coerce(entry, state.settings.default_region)
            except ValueError as exc:
                problems.append(f"DestinationPool {pool.name!r} names {entry!r}, which cannot be used: {exc}")
    problems += _store_problems(state)
    for problem in problems:
        click.echo(f"Problem: {problem}")
    if problems:
        click.echo(f"{len(problems)} problem(s) found.")
        raise SystemExit(1)
    enabled = ", ".join(state.platforms) or "no platform"
    click.echo(f"All good: {len(entries)} destination(s) checked against {enabled}.")


def _store_problems(state: State) -> list[str]:
    store = state.services.store
    click.echo(f"Store: {store!r}.")
    try:
        postgres = _postgres_module(store)
        if postgres is not None and not postgres.tables_exist(store.engine):  # type: ignore[attr-defined]
            return [
                "The PostgreSQL store's tables are missing or out of date."
                " Run 'flask calltransfer create-tables' once."
            ]
        # A read reaches the server (or opens the file) without changing anything in it.
        with store.trying():
            store.get("calltransfer:check")
    except StoreUnavailable as exc:
        return [f"The store cannot be used: {exc}"]
    except store.outage_errors as exc:
        return [f"The store cannot be reached ({type(exc).__name__}: {str(exc)[:200]})."]
    return []


def _postgres_module(store: object) -> t.Any:
    """flask_calltransfer.store.postgres if ``store`` is a PostgresStore; SQLAlchemy is optional."""
    if type(store).__module__ != "flask_calltransfer.store.postgres":
        return None
    from .store import postgres

    return postgres


@cli.command("create-tables")
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL instead of running it.")
def create_tables(as_sql: bool) -> None:
    """Create the PostgreSQL store's tables where they do not exist yet.

    Apps that manage their schema with Alembic or Flask-Migrate can instead add
    flask_calltransfer.store.postgres.metadata to their target_metadata.
    """
    store = _state().services.store
    postgres = _postgres_module(store)
    if postgres is None:
        raise click.ClickException(
            f"The store in use is {store!r}, which needs no tables. Set CALLTRANSFER_STORE_URL to a"
            " postgresql:// URL (or pass a PostgresStore) to use PostgreSQL."
        )
    if as_sql:
        for statement in postgres.create_statements():
            click.echo(f"{statement};")
        return
    postgres.create_tables(store.engine)  # type: ignore[attr-defined]
    click.echo(f"The store's tables are ready in {store!r}.")


@cli.command("tool")
@click.argument("platform", type=click.Choice(["vapi", "voicedock"]))
@click.option("--name", default="transferCall", show_default=True, help="The Vapi tool's function name.")
@click.option(
    "--apply", "assistant_id", help="Install the tool on this assistant through the platform's API."
)
def tool(platform: str, name: str, assistant_id: str | None) -> None:
    """Print the transfer tool built from the directory; with --apply, install it."""
    state = _state()
    body = (
        vapi_transfer_tool(name) if platform == "vapi" else voicedock_transfer_tool(state.registry.directory)
    )
    click.echo(json.dumps(body, indent=2, ensure_ascii=False))
    if assistant_id is None:
        return
    from .clients import ApiError
    from .clients import VapiApiClient
    from .clients import VoiceDockClient

    try:
        if platform == "voicedock":
            voicedock = state.services.clients.get("voicedock")
            if not isinstance(voicedock, VoiceDockClient):
                raise RuntimeError(messages.voicedock_client_missing())
            voicedock.update_assistant_tools(assistant_id, [body])
        else:
            vapi_api = state.services.clients.get("vapi_api")
            if not isinstance(vapi_api, VapiApiClient):
                raise RuntimeError(messages.vapi_api_client_missing())
            created = vapi_api.create_tool(body)
            vapi_api.attach_tool(assistant_id, str(created["id"]))
    except (ApiError, RuntimeError, KeyError) as exc:
        raise click.ClickException(f"The tool was not installed: {exc}") from None
    click.echo(f"Installed on assistant {assistant_id}.")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _since(text: str) -> float:
    try:
        return float(text[:-1]) * _UNITS[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise click.BadParameter(f"{text!r} is not a period such as 30m, 12h or 7d.") from None


@cli.command("stats")
@click.option("--since", default="7d", show_default=True, help="How far back: 30m, 12h, 7d, 4w.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats(since: str, as_json: bool) -> None:
    """Transfer figures from the transfer log (CALLTRANSFER_LOG_TRANSFERS)."""
    import time

    from .analytics import stats as figures

    log = _state().transfer_log
    if log is None:
        raise click.ClickException(
            "The transfer log is off. Set CALLTRANSFER_LOG_TRANSFERS = True to record transfers."
        )
    report = figures(log.records(since=time.time() - _since(since)))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"Transfer requests in the last {since}: {report['requests']}")
    click.echo(
        f"  transferred {report['transferred']}, refused {report['refused']}"
        f" ({report['refusal_rate']:.1%}), no transfer yet {report['deferred']},"
        f" failures {report['failure_rate']:.1%}"
        + (f" {report['failures_by_stage']}" if report["failures_by_stage"] else "")
    )
    for title, key in (
        ("By destination", "by_destination"),
        ("By platform", "by_platform"),
        ("Outcomes", "outcomes"),
    ):
        click.echo(f"{title}:")
        for name, count in report[key].items():
            click.echo(f"  {name}: {count}")
        if not report[key]:
            click.echo("  none")
    failover = report["failover"]
    if failover["calls"]:
        click.echo(
            f"Failover: {failover['calls']} calls over {failover['attempts']} attempts; the first choice"
            f" failed for {failover['first_choice_failed']} ({failover['first_choice_failure_rate']:.1%}),"
            f" {failover['not_taken']} taken by nobody"
        )
        for name, count in failover["taken_by"].items():
            click.echo(f"  taken by {name}: {count}")
    latency = report["latency_ms"]
    if latency:
        parts = ", ".join(f"{name} {latency[name]:.1f} ms" for name in ("p50", "p90", "p99"))
        click.echo(f"Handler latency: {parts}")


@cli.group("callbacks", invoke_without_command=True)
@click.option(
    "--status",
    type=click.Choice(["open", "claimed", "done", "all"]),
    default="open",
    show_default=True,
    help="Which tasks to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON.")
@click.pass_context
@with_appcontext
def callbacks(context: click.Context, status: str, as_json: bool) -> None:
    """List callback tasks (open ones by default), oldest first; claim and complete them.

    A task holds the caller's number and what the hand-off says: this command is for your staff.
    """
    if context.invoked_subcommand is not None:
        return
    import time

    book = _state().callbacks
    try:
        tasks = book.tasks(None if status == "all" else status)
    except StoreUnavailable as exc:
        raise click.ClickException(f"The callback tasks cannot be read: {exc}") from None
    if as_json:
        click.echo(json.dumps(tasks, indent=2))
        return
    if not tasks:
        click.echo(f"No {'' if status == 'all' else status + ' '}callback tasks.")
        return
    now = time.time()
    for task in tasks:
        waited = _waited(now - float(task.get("requested_at") or now))
        slot = task.get("slot") or "as soon as someone is free"
        who = f", claimed by {task['claimed_by']}" if task.get("claimed_by") else ""
        reason = f": {task['reason']}" if task.get("reason") else ""
        click.echo(
            f"#{task['id']} {task.get('status')}{who}, {task.get('caller') or 'caller unknown'}"
            f" ({task.get('platform')}), waiting {waited}, call back {slot}{reason}"
        )


def _waited(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days"


@callbacks.command("claim")
@click.argument("task_id", type=int)
@click.option("--by", required=True, help="Who takes the task, such as an agent's name.")
def claim_callback(task_id: int, by: str) -> None:
    """Claim a callback task. Of several people claiming one task at once, one gets it."""
    try:
        task = _state().callbacks.claim(task_id, by)
    except StoreUnavailable as exc:
        raise click.ClickException(f"The task cannot be claimed now: {exc}") from None
    if task is None:
        raise click.ClickException(
            f"Task #{task_id} is not open: someone claimed it first, it is done, or there is no such task."
            " List the open ones with 'flask calltransfer callbacks'."
        )
    click.echo(f"Task #{task_id} is yours, {by}: call {task.get('caller') or 'the caller'} back.")


@callbacks.command("done")
@click.argument("task_id", type=int)
@click.option("--by", help="Who called back, when the task was not claimed.")
def complete_callback(task_id: int, by: str | None) -> None:
    """Mark a callback task done."""
    try:
        task = _state().callbacks.complete(task_id, by)
    except StoreUnavailable as exc:
        raise click.ClickException(f"The task cannot be completed now: {exc}") from None
    if task is None:
        raise click.ClickException(f"Task #{task_id} is done already, or there is no such task.")
    click.echo(f"Task #{task_id} is done.")
