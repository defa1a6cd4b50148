"""The platform pages' curl examples work against the example app, with the answers they show.

Each platform page has a section "A full request and its answer": ``console`` blocks holding the
shell commands that post a sample webhook to ``make run`` (the example app under gunicorn on
127.0.0.1:8000, with its development credentials), each followed by an ``http`` block with the
answer: the status line, the headers worth showing, and the JSON body. Here the example app runs
under a real gunicorn on a free loopback port with the same development credentials, every
command runs in bash with real curl (only the host and port changed), and the answer must match:
the same status, the headers shown, and the same JSON (key order aside).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import typing as t

import pytest

from tests.servers import ROOT
from tests.servers import gunicorn

PAGES = ("vapi", "voicedock", "sipgate")
SECTION = "A full request and its answer"
#: Where the pages tell readers ``make run`` listens.
MAKE_RUN = "127.0.0.1:8000"

_DIRECTIVE = re.compile(r"^\.\. code-block:: *(\S+) *$")
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1+$")


class Block(t.NamedTuple):
    language: str
    text: str
    line: int


class Example(t.NamedTuple):
    command: Block
    answer: Block


def section(page: str) -> tuple[list[str], int]:
    """The lines of the page's example section, and the line number of its first line."""
    lines = (ROOT / "docs" / f"{page}.rst").read_text("utf-8").splitlines()
    for index, line in enumerate(lines[:-1]):
        if line == SECTION and _UNDERLINE.match(lines[index + 1]) and len(lines[index + 1]) >= len(line):
            start = index + 2
            break
    else:
        pytest.fail(f"docs/{page}.rst has no section titled {SECTION!r}.")
    end = start
    while end < len(lines) - 1 and not (
        lines[end].strip() and _UNDERLINE.match(lines[end + 1]) and len(lines[end + 1]) >= len(lines[end])
    ):
        end += 1
    return lines[start:end], start + 1


def blocks(page: str) -> list[Block]:
    """The section's top-level ``code-block`` directives, with their dedented content."""
    lines, first = section(page)
    found = []
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        if not match:
            index += 1
            continue
        body_start = index + 1
        index += 1
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
            index += 1
        body = lines[body_start:index]
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        indent = min(len(line) - len(line.lstrip()) for line in body if line.strip())
        text = "\n".join(line[indent:] for line in body)
        found.append(Block(match.group(1), text, first + body_start))
    return found


def examples(page: str) -> list[Example]:
    """The section's commands, each with the answer shown after it."""
    found = blocks(page)
    assert found, f"docs/{page}.rst: the section {SECTION!r} has no code block."
    pairs = []
    for command, answer in zip(found[::2], found[1::2], strict=False):
        where = f"docs/{page}.rst:{command.line}"
        assert command.language == "console", f"{where}: expected a console block with the command."
        assert answer.language == "http", f"{where}: the command should be followed by an http block."
        assert re.search(r"^\$ curl ", command.text, re.M), f"{where}: the command block runs no curl."
        assert MAKE_RUN in command.text, f"{where}: the command should post to make run's {MAKE_RUN}."
        pairs.append(Example(command, answer))
    assert len(found) % 2 == 0, f"docs/{page}.rst:{found[-1].line}: a block without its pair."
    return pairs


def script(console: str, address: str) -> str:
    """A console block as a bash script: prompts dropped, continuation lines kept."""
    lines = [line[2:] if line.startswith("$ ") else line for line in console.splitlines()]
    return "\n".join(lines).replace(MAKE_RUN, address) + "\n"


class Answer(t.NamedTuple):
    status: int
    reason: str
    headers: dict[str, str]
    body: str


def parse_answer(text: str) -> Answer:
    """An HTTP response as ``curl -i`` prints it (after any ``100 Continue``), or as a page shows it."""
    text = text.replace("\r\n", "\n")
    while True:
        head, _, body = text.partition("\n\n")
        status_line, *header_lines = head.split("\n")
        match = re.match(r"HTTP/[\d.]+ (\d{3}) ?(.*)$", status_line)
        assert match, f"Not an HTTP status line: {status_line!r}"
        if match.group(1) != "100":
            break
        text = body
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(match.group(1)), match.group(2).strip(), headers, body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[str]:
    """The example app as ``make run`` serves it: gunicorn, the example's gunicorn config, no
    credentials in the environment (so the development ones), and a SQLite store, here in a
    temporary folder instead of ``instance/``."""
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            pytest.fail(f"The docs' examples need {tool}: install Debian's {tool} package.")
    folder = tmp_path_factory.mktemp("docs-curl")
    env = {
        "CALLTRANSFER_STORE_URL": f"sqlite:///{folder / 'calltransfer.sqlite3'}",
        "SUPPORT_LINE_LOG": str(folder / "transfers.jsonl"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("CALLTRANSFER_"):
                patch.delenv(key)
        with gunicorn("example_app:create_app()", env=env, log_path=folder / "gunicorn.log") as (host, port):
            yield f"{host}:{port}"


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_answer_as_shown(page: str, server: str, tmp_path: pathlib.Path) -> None:
    pairs = examples(page)
    assert pairs, f"docs/{page}.rst shows no request with its answer."
    for command, shown in pairs:
        where = f"docs/{page}.rst:{command.line}"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script(command.text, server)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=15,
        )
        assert result.returncode == 0, f"{where}: the command failed: {result.stderr}"
        got = parse_answer(result.stdout)
        expected = parse_answer(shown.text)
        shows = f"{expected.status} {expected.reason}"
        assert (got.status, got.reason.upper()) == (expected.status, expected.reason.upper()), (
            f"{where}: answered {got.status} {got.reason}, the page shows {shows}."
        )
        for name, value in expected.headers.items():
            assert got.headers.get(name) == value, f"{where}: header {name} is {got.headers.get(name)!r}."
        if expected.body.strip():
            assert json.loads(got.body) == json.loads(expected.body), f"{where}: answered {got.body}"
        else:
            assert got.body == "", f"{where}: answered {got.body!r}, the page shows no body."


def test_parsers_find_each_pages_examples() -> None:
    # The parsers themselves, on what they must find: each page's commands and answers in order.
    counts = {page: len(examples(page)) for page in PAGES}
    assert counts == {"vapi": 1, "voicedock": 1, "sipgate": 3}
    vapi = examples("vapi")[0]
    assert json.loads(parse_answer(vapi.answer.text).body)["destination"]["number"] == "+31207948450"
    assert script("$ curl -sS \\\n    -d x http://127.0.0.1:8000/a\n", "127.0.0.1:1") == (
        "curl -sS \\\n    -d x http://127.0.0.1:1/a\n"
    )
    continued = parse_answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 NO CONTENT\r\nServer: x\r\n\r\n")
    assert (continued.status, continued.headers, continued.body) == (204, {"server": "x"}, "")
