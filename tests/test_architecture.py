"""The package's layout: one job per module, requests flowing one way, platforms as plug-ins.

The plug-in tests install a platform the way a separate distribution does: a ``.dist-info``
folder with an ``entry_points.txt`` on ``sys.path``, found through :mod:`importlib.metadata`.
"""

from __future__ import annotations

import ast
import logging
import pathlib
import sys
import textwrap
import typing as t

import pytest
from flask import Flask

import flask_calltransfer
from flask_calltransfer import CallTransfer
from flask_calltransfer import TransferRequest
from flask_calltransfer.platforms import BUILTIN_PLATFORMS
from flask_calltransfer.platforms import installed_platforms
from flask_calltransfer.platforms import worker_timeout

PACKAGE = pathlib.Path(flask_calltransfer.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Which package modules each module imports, at run time or for type checking alike."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in modules else target)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {module for module in found if module in modules and module != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_in_the_package() -> None:
    graph = import_graph()
    assert "flask_calltransfer.dispatch" in graph and "flask_calltransfer.views" in graph
    assert cycles(graph) == []


def test_the_circle_finder_finds_one() -> None:
    # The check above could pass by finding nothing at all.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    "module",
    ["views", "cli", "dashboard", "dispatch", "state", "handlers", "pytest_plugin", "platforms.base"],
)
def test_request_time_modules_do_not_import_the_extension(module: str) -> None:
    assert "flask_calltransfer.extension" not in import_graph()[f"flask_calltransfer.{module}"]


def test_the_routing_ladder_lives_outside_the_extension_class() -> None:
    ladder = {
        "_route",
        "_route_once",
        "_route_steps",
        "_run_handlers",
        "_recover",
        "_fallback",
        "_send",
        "_refuse",
    }
    assert not ladder & set(vars(CallTransfer))
    from flask_calltransfer.dispatch import Dispatch

    assert {"answer", "_route", "_recover", "_fallback", "_send", "_refuse"} <= set(vars(Dispatch))


PLUGIN = textwrap.dedent(
    '''
    """A platform from another distribution, written only against the public contract."""
    from flask import Response

    from flask_calltransfer import InvalidPayload, PlatformEvent, TransferRefused, TransferRequest
    from flask_calltransfer.platforms import Platform
    from flask_calltransfer.platforms.base import json_response
    from flask_calltransfer.security import SharedSecretVerifier


    class EchoClient:
        def __init__(self, http, base_url):
            self.http = http
            self.base_url = base_url


    class EchoPlatform(Platform):
        name = "echo"
        credential_keys = ("CALLTRANSFER_ECHO_TOKEN",)
        config_defaults = {"CALLTRANSFER_ECHO_GREETING": "Hello from echo.", "CALLTRANSFER_ECHO_URL": "http://echo.test"}
        handler_timeout = 2.0
        reply_budget = 3.0

        @classmethod
        def build_clients(cls, config, http):
            return {"echo": EchoClient(http, config["CALLTRANSFER_ECHO_URL"])}

        @classmethod
        def from_config(cls, config, services):
            verifier = SharedSecretVerifier([config["CALLTRANSFER_ECHO_TOKEN"]], header="X-Echo-Token")
            platform = cls(services=services, verifier=verifier)
            platform.greeting = config["CALLTRANSFER_ECHO_GREETING"]
            platform.client = services.clients["echo"]
            return platform

        def parse(self, payload, inbound):
            if not isinstance(payload.get("call"), str):
                raise InvalidPayload("An echo request names its call.", {"call": ["Missing."]})
            if payload.get("event") != "ask":
                return PlatformEvent(self.name, str(payload.get("event")), payload["call"], payload)
            return TransferRequest(
                platform=self.name, event="ask", call_id=payload["call"], text=payload.get("text", ""),
                raw=payload, caller=payload.get("from"),
            )

        def render(self, call, outcome):
            if isinstance(outcome, TransferRefused):
                return json_response({"say": outcome.reason})
            if not hasattr(outcome, "number"):
                raise self.unsupported(outcome.kind, kind=True)
            return json_response({"dial": outcome.number, "greeting": self.greeting})

        def render_event(self, event, reply):
            return json_response(reply or {})
    '''
)


@pytest.fixture
def plugin(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> t.Iterator[pathlib.Path]:
    """An installed distribution ``echo-platform`` offering the ``echo`` platform."""
    (tmp_path / "echo_platform.py").write_text(PLUGIN)
    info = tmp_path / "echo_platform-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-platform\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[flask_calltransfer.platforms]\necho = echo_platform:EchoPlatform\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield info
    sys.modules.pop("echo_platform", None)


def _entry_points(info: pathlib.Path, lines: str) -> None:
    (info / "entry_points.txt").write_text("[flask_calltransfer.platforms]\n" + lines)


def test_an_installed_platform_is_found_and_serves_its_webhook(plugin: pathlib.Path) -> None:
    assert list(installed_platforms())[:3] == list(BUILTIN_PLATFORMS)
    transfers = CallTransfer()
    assert "echo" in transfers.platform_classes

    @transfers.on_request(platform="echo")
    def route(call: TransferRequest) -> str:
        return "+31612345678" if "sales" in call.text else "sip:desk@pbx.example.com"

    app = Flask(__name__)
    app.config.update(TESTING=True, CALLTRANSFER_ECHO_TOKEN="echo-secret", CALLTRANSFER_PLATFORMS=["echo"])
    transfers.init_app(app)
    client = app.test_client()
    good = {"X-Echo-Token": "echo-secret"}
    answer = client.post(
        "/calltransfer/echo", json={"event": "ask", "call": "c1", "text": "sales"}, headers=good
    )
    assert answer.status_code == 200
    # The plug-in's own default, applied by init_app, reaches its answer.
    assert answer.json == {"dial": "+31612345678", "greeting": "Hello from echo."}
    # What it cannot carry goes down the failure path to its own refusal: never a 500.
    refused = client.post(
        "/calltransfer/echo", json={"event": "ask", "call": "c2", "text": "?"}, headers=good
    )
    assert refused.status_code == 200 and refused.json == {"say": app.config["CALLTRANSFER_REFUSAL_MESSAGE"]}
    # Verification and bad payloads are handled by the extension for it.
    assert client.post("/calltransfer/echo", json={"event": "ask", "call": "c3"}).status_code == 401
    assert client.post("/calltransfer/echo", json={"event": "ask"}, headers=good).status_code == 400
    assert client.post("/calltransfer/echo", json={"event": "bye", "call": "c4"}, headers=good).json == {}
    with app.app_context():
        echo = transfers.clients["echo"]
        assert echo.base_url == "http://echo.test"  # type: ignore[attr-defined]
        assert app.extensions["calltransfer"].platforms["echo"].client is echo
    # gunicorn's worker timeout covers the plug-in's reply budget too (3 s here, 20 s for Vapi).
    assert worker_timeout() == worker_timeout(BUILTIN_PLATFORMS.values())


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("echo = echo_platform:Missing\n", "could not be loaded"),
        ("echo = echo_platform:EchoClient\n", "is not a Platform subclass"),
        ("other = echo_platform:EchoPlatform\n", "is not a Platform subclass"),
        ("vapi = echo_platform:EchoPlatform\n", "which is built in"),
    ],
)
def test_a_broken_entry_point_is_left_out_with_a_reason(
    plugin: pathlib.Path, caplog: pytest.LogCaptureFixture, line: str, says: str
) -> None:
    _entry_points(plugin, line)
    with caplog.at_level(logging.ERROR, logger="flask_calltransfer"):
        found = installed_platforms()
    assert "echo" not in found and set(BUILTIN_PLATFORMS) <= set(found)
    assert found["vapi"] is BUILTIN_PLATFORMS["vapi"]
    assert any(says in record.getMessage() for record in caplog.records)


def test_an_app_naming_a_platform_that_failed_to_load_is_told_it_is_unknown(plugin: pathlib.Path) -> None:
    _entry_points(plugin, "echo = echo_platform:Missing\n")
    app = Flask(__name__)
    app.config.update(CALLTRANSFER_ECHO_TOKEN="echo-secret", CALLTRANSFER_PLATFORMS=["echo"])
    with pytest.raises(flask_calltransfer.ConfigurationError, match="'echo', which is not a platform here"):
        CallTransfer(app)
