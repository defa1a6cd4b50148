"""Every Python code block in the README and the built docs runs, as a reader would run it.

The blocks come from the Sphinx build itself (``tests/docs_support/collect.py``), so docstrings
that autodoc pulls into the API pages are included. Each page's blocks run in order, in one
namespace, in a fresh interpreter whose working directory is an empty folder; see
``tests/docs_support/run_blocks.py`` for the file and test conventions.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import typing as t

import pytest

from tests.docs_support.run_blocks import FILE_BLOCK

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SUPPORT = pathlib.Path(__file__).resolve().parent / "docs_support"
PACKAGE = ROOT / "flask_calltransfer"

PYTHON = {"python", "python3", "py"}

# The API reference's examples read as written inside an app that has the extension: the names
# the package exports, and one ``app`` and ``transfers``, are in scope, as if this ran first.
DOCSTRING_SETUP = """\
from flask import Flask
from flask_calltransfer import *
from flask_calltransfer import signals, testing
app = Flask("docs")
app.config.update(TESTING=True, CALLTRANSFER_VAPI_SECRET="change-me")
transfers = CallTransfer(app)
"""

# Pages that build on another page's files: testing.rst tests the quickstart's ``support`` app.
BUILDS_ON = {"testing": "quickstart"}
# Languages that are shown, not run: shell sessions (the platform pages' curl examples are
# replayed by tests/test_docs_curl.py), payloads (JSON, TwiML), configuration files and plain output.
SHOWN = {"console", "json", "text", "ini", "http", "toml", "shell", "sh", "bash", "xml"}


# Every way a page or docstring can hold Python: a code block under any of its names, or a file
# included as Python.
PYTHON_BLOCK = re.compile(r"code-block::[ \t]*(?:python3?|py)[ \t]*$|literalinclude::", re.M)


def _rst_pages() -> list[str]:
    return sorted(p.stem for p in DOCS.glob("*.rst") if PYTHON_BLOCK.search(p.read_text("utf-8")))


def _docstring_modules() -> list[str]:
    modules = (p for p in PACKAGE.rglob("*.py") if PYTHON_BLOCK.search(p.read_text("utf-8")))
    return sorted(str(p.relative_to(ROOT)) for p in modules)


@pytest.fixture(scope="session")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, t.Any]]:
    work = tmp_path_factory.mktemp("docs-blocks")
    confdir = work / "conf"
    confdir.mkdir()
    (confdir / "conf.py").write_text(
        textwrap.dedent(
            f"""
            import runpy, sys
            sys.path.insert(0, {str(SUPPORT)!r})
            globals().update(runpy.run_path({str(DOCS / "conf.py")!r}))
            extensions = [*extensions, "collect"]
            """
        ),
        encoding="utf-8",
    )
    out = work / "blocks.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-E",
            "-q",
            "-b",
            "dummy",
            "-c",
            str(confdir),
            "-d",
            str(work / "doctrees"),
            str(DOCS),
            str(work / "out"),
        ],
        env=dict(os.environ, DOCS_BLOCKS_OUT=str(out)),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    return t.cast("list[dict[str, t.Any]]", json.loads(out.read_text("utf-8")))


def _where(block: dict[str, t.Any]) -> str:
    source = block["source"]
    if source.startswith(str(ROOT)):
        source = source[len(str(ROOT)) + 1 :]
    return f"{source}:{block['line']}"


def _undefined_names(code: str, name: str) -> str:
    """Ruff's report of names used but never defined (F821) in ``code``, or ``""``."""
    result = subprocess.run(
        [
            str(pathlib.Path(sys.executable).parent / "ruff"),
            "check",
            "--isolated",
            "--select",
            "F821",
            "--output-format",
            "concise",
            "--stdin-filename",
            name,
            "-",
        ],
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return "" if result.returncode == 0 else result.stdout


def _file_path(block: dict[str, t.Any]) -> str | None:
    """The file a block is the content of (its first line a comment naming it), read exactly as
    run_blocks.py reads it, or ``None`` for a block that is run."""
    code = block["code"].lstrip()
    named = FILE_BLOCK.fullmatch(code.splitlines()[0]) if code else None
    return named.group(1) if named else None


def _module(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(block: dict[str, t.Any]) -> set[str]:
    """The modules a block imports, a file block's relative imports resolved."""
    package = ""
    path = _file_path(block)
    if path is not None:
        package = _module(path) if path.endswith("__init__.py") else _module(path).rpartition(".")[0]
    found = set()
    for dots, name in re.findall(r"^\s*from\s+(\.*)([\w.]*)\s+import", block["code"], re.M):
        found.add(f"{package}.{name}".strip(".") if dots else name)
    for names in re.findall(r"^\s*import\s+([\w., ]+)", block["code"], re.M):
        found.update(name.strip().split(" ")[0] for name in names.split(","))
    return found


def _unused_files(group: list[dict[str, t.Any]]) -> list[str]:
    """File blocks that nothing imports, runs or collects: their code would never be tried."""
    imported = set().union(*(_imported(b) for b in group))
    unused = []
    for block in group:
        path = _file_path(block)
        if path is None:
            continue
        name = path.rsplit("/", 1)[-1]
        # pytest collects these; gunicorn.conf.py is loaded as gunicorn loads it (run_blocks.py).
        collected = name in ("conftest.py", "gunicorn.conf.py") or name.startswith("test_")
        if not path.endswith(".py") or collected:
            continue
        module = _module(path)
        if not any(m == module or m.startswith(module + ".") for m in imported):
            unused.append(path)
    return unused


def _run(group: list[dict[str, t.Any]], tmp_path: pathlib.Path, label: str) -> None:
    assert group, f"{label} has no Python code block in the built docs."
    unused = _unused_files(group)
    assert not unused, f"{label} writes {unused}, which none of its blocks imports, so it never runs."
    main = [_where(b) for b in group if re.search(r"__name__\s*==\s*['\"]__main__['\"]", b["code"])]
    assert not main, f"Code under `if __name__ == '__main__':` is never run here: {main}"
    executed = [b["code"] for b in group if _file_path(b) is None]
    report = _undefined_names("\n\n".join(executed), f"{label}.py")
    assert not report, f"{label} uses names no block defines:\n{report}"
    for block in group:
        path = _file_path(block)
        if path is not None:
            report = _undefined_names(block["code"], path)
            assert not report, f"{_where(block)} uses names it never defines:\n{report}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps([{"code": b["code"], "where": _where(b)} for b in group]), "utf-8")
    run_dir = tmp_path / "page"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLTRANSFER_", "FLASK_"))}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, str(SUPPORT / "run_blocks.py"), str(spec)],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-6000:]


def test_every_literal_block_names_its_language(blocks: list[dict[str, t.Any]]) -> None:
    # A block without a language is neither run nor checked: make every one say what it is.
    unnamed = [_where(b) for b in blocks if b["kind"] == "doctest" or b["language"] not in PYTHON | SHOWN]
    assert not unnamed, f"Give these blocks an explicit language (python, console, json, text): {unnamed}"
    assert sum(b["language"] in PYTHON for b in blocks) >= 30


@pytest.mark.parametrize("page", _rst_pages())
def test_page_code_runs(page: str, blocks: list[dict[str, t.Any]], tmp_path: pathlib.Path) -> None:
    group = _page_blocks(blocks, page)
    if page in BUILDS_ON:
        group = [b for b in _page_blocks(blocks, BUILDS_ON[page]) if _file_path(b) is not None] + group
    _run(group, tmp_path, f"docs/{page}.rst")


def _page_blocks(blocks: list[dict[str, t.Any]], page: str) -> list[dict[str, t.Any]]:
    # A page's own blocks and the files it includes; the docstrings autodoc shows on it are run
    # on their own, by test_docstring_code_runs.
    return [
        b
        for b in blocks
        if b["docname"] == page and b["language"] in PYTHON and ":docstring of " not in b["source"]
    ]


@pytest.mark.parametrize("module", _docstring_modules())
def test_docstring_code_runs(module: str, blocks: list[dict[str, t.Any]], tmp_path: pathlib.Path) -> None:
    # Each docstring is its own example: its blocks share a namespace, other docstrings' do not.
    path = str(ROOT / module)
    docstrings: dict[str, list[dict[str, t.Any]]] = {}
    for block in blocks:
        if block["language"] in PYTHON and block["source"].startswith(path + ":docstring of "):
            docstrings.setdefault(block["source"], []).append(block)
    written = len(PYTHON_BLOCK.findall((ROOT / module).read_text("utf-8")))
    rendered = sum(len(group) for group in docstrings.values())
    assert rendered == written, (
        f"{module} has {written} Python code blocks in its docstrings, but the built docs show"
        f" {rendered}: add the members whose examples are missing to the API reference."
    )
    for index, (source, group) in enumerate(docstrings.items()):
        setup = {"code": DOCSTRING_SETUP, "source": "DOCSTRING_SETUP in tests/test_docs.py", "line": 1}
        _run([setup, *group], tmp_path / str(index), source.split(":docstring of ")[1])


def test_readme_code_runs(tmp_path: pathlib.Path) -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    fences = list(re.finditer(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M))
    unnamed = [m.start() for m in fences if m.group(1).strip() not in PYTHON | SHOWN]
    assert not unnamed, "Give every README fence a language (python, console, sh, json, text)."
    group = [
        {"code": m.group(2), "source": "README.md", "line": text.count("\n", 0, m.start()) + 2}
        for m in fences
        if m.group(1).strip() in PYTHON
    ]
    _run(group, tmp_path, "README.md")
