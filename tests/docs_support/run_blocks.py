"""Run one page's Python code blocks in order, in one namespace, in the current directory.

Usage: ``python run_blocks.py blocks.json``, where the file holds ``[{"code": ..., "where": ...}]``.
A block whose first line is a comment naming a file (``# conftest.py``) is written to that file
instead of being run. When the page writes ``test_*.py`` files, pytest runs them afterwards; a
``gunicorn.conf.py`` is loaded the way gunicorn loads it, each setting validated and its logging
configuration applied. A block that raises, or makes flask_calltransfer log an ERROR, fails the
page.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import pathlib
import re
import runpy
import subprocess
import sys
import traceback

FILE_BLOCK = re.compile(r"#\s*([\w./-]+\.(?:py|cfg|ini|toml|txt|json))\s*$")


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _load_gunicorn_config(path: pathlib.Path) -> None:
    """What gunicorn does with a config file: every known setting through its validator, and the
    logging configuration applied."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    config = Config()
    for name, value in runpy.run_path(str(path)).items():
        if name in config.settings:
            config.set(name, value)
    Logger(config)


def main() -> int:
    blocks = json.loads(pathlib.Path(sys.argv[1]).read_text(encoding="utf-8"))
    here = pathlib.Path.cwd()
    sys.path.insert(0, str(here))
    errors = _Errors()
    logging.getLogger("flask_calltransfer").addHandler(errors)
    namespace: dict[str, object] = {"__name__": "docs_example"}
    tests = []
    for block in blocks:
        code, where = block["code"], block["where"]
        first = code.lstrip().splitlines()[0] if code.strip() else ""
        named = FILE_BLOCK.fullmatch(first)
        if named:
            path = here / named.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code + "\n", encoding="utf-8")
            if path.name.startswith("test_") and path.suffix == ".py":
                tests.append(path)
            if path.name == "gunicorn.conf.py":
                try:
                    _load_gunicorn_config(path)
                except BaseException:
                    print(f"gunicorn refused the configuration at {where}:\n{code}\n", file=sys.stderr)
                    traceback.print_exc()
                    return 1
            continue
        # Files written a moment ago may be newer than the import system's directory caches.
        importlib.invalidate_caches()
        try:
            exec(compile(code, where, "exec"), namespace)
        except BaseException:
            print(f"The code block at {where} failed:\n{code}\n", file=sys.stderr)
            traceback.print_exc()
            return 1
        if errors.records:
            record = errors.records[0]
            print(f"The code block at {where} logged an error: {record.getMessage()}", file=sys.stderr)
            return 1
    if tests:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here), *sys.path[1:]]))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, tests)],
            cwd=here,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            print(f"The page's tests failed:\n{result.stdout}\n{result.stderr}", file=sys.stderr)
            return 1
        print(result.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
