"""The built wheel is complete: build it as docs/installation.rst says, install it, use it.

The wheel is built with ``python -m build --wheel`` from a copy of the source tree, in the isolated
build environment that command creates by default (it installs the build backend from PyPI). The
``--no-isolation`` shortcut is not used: it builds with whatever setuptools the running environment
has, and the metadata in pyproject.toml (an SPDX ``license`` string) needs a newer one than some
environments carry.

The wheel is then installed with ``pip install --no-deps --target``, and every check runs in a
fresh interpreter started with ``-S`` (no ``.pth`` files, so the editable install of the source
checkout is not importable), the installed copy first on ``PYTHONPATH`` and the running
environment's site-packages after it for the dependencies, in a directory outside the checkout.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import typing as t
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = "flask_calltransfer"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
# Files next to pyproject.toml that setuptools reads or may put into the wheel (license files).
ROOT_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in", "README.md")
LICENSE_GLOBS = ("LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.egg-info")
BUILD_TIMEOUT = 180
SECRET = "packaging-secret-0123456789"


def source_version() -> str:
    """The version pyproject.toml declares: its ``dynamic`` version is read from an attribute."""
    assert "version" in PYPROJECT["project"]["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = attr.rpartition(".")
    assert module == PACKAGE, attr
    tree = ast.parse((ROOT / PACKAGE / "__init__.py").read_text("utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return t.cast(str, ast.literal_eval(node.value))
    raise AssertionError(f"{attr} is not assigned a literal in {PACKAGE}/__init__.py")


def source_files() -> set[str]:
    """Every file of the package in the source tree, as a path relative to the tree's root."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}
    }


def source_packages() -> set[str]:
    return {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / PACKAGE).rglob("__init__.py")}


def run(args: list[str], *, timeout: float, **kwargs: t.Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    tree = tmp_path_factory.mktemp("source")
    for name in ROOT_FILES:
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, tree / name)
    for pattern in LICENSE_GLOBS:
        for path in ROOT.glob(pattern):
            shutil.copy2(path, tree / path.name)
    shutil.copytree(ROOT / PACKAGE, tree / PACKAGE, ignore=IGNORED)
    dist = tmp_path_factory.mktemp("dist")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    try:
        run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(tree)],
            timeout=BUILD_TIMEOUT,
            cwd=tree,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"python -m build --wheel took more than {BUILD_TIMEOUT} s; its isolated build"
            " environment installs setuptools from PyPI, which must be reachable"
        )
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def installed(wheel: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    target = tmp_path_factory.mktemp("site")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        timeout=120,
    )
    return target


def run_installed(
    target: pathlib.Path, cwd: pathlib.Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the interpreter with only the installed copy of the package importable (its directory
    is also in ``INSTALLED_TARGET``)."""
    dependencies = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), *dependencies])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["INSTALLED_TARGET"] = str(target.resolve())
    return run([sys.executable, "-S", *args], timeout=timeout, cwd=cwd, env=env)


def wheel_names(wheel: pathlib.Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def wheel_metadata(wheel: pathlib.Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [n for n in archive.namelist() if n.endswith(f".dist-info/{name}")]
        return archive.read(path).decode("utf-8")


def test_the_wheel_is_named_and_versioned_as_pyproject_says(wheel: pathlib.Path) -> None:
    version = source_version()
    assert wheel.name == f"{PACKAGE}-{version}-py3-none-any.whl"
    metadata = wheel_metadata(wheel, "METADATA")
    assert f"\nName: {PYPROJECT['project']['name']}\n" in metadata
    assert f"\nVersion: {version}\n" in metadata
    assert f"\nRequires-Python: {PYPROJECT['project']['requires-python']}\n" in metadata
    for requirement in PYPROJECT["project"]["dependencies"]:
        assert f"\nRequires-Dist: {requirement}\n" in metadata
    for extra in PYPROJECT["project"]["optional-dependencies"]:
        assert f"\nProvides-Extra: {extra}\n" in metadata
    assert {"gunicorn", "redis"} <= set(PYPROJECT["project"]["optional-dependencies"])


def test_every_file_of_the_package_is_in_the_wheel(wheel: pathlib.Path) -> None:
    """Every module, every subpackage and every data file (``py.typed`` and whatever else lives in
    the package directory), and nothing from outside the package."""
    names = wheel_names(wheel)
    assert source_files() <= names, sorted(source_files() - names)
    assert f"{PACKAGE}/py.typed" in names
    for package in ("platforms", "clients", "store"):
        assert f"{PACKAGE}/{package}/__init__.py" in names
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {PACKAGE, f"{PACKAGE}-{source_version()}.dist-info"}, top_level


def test_the_entry_points_are_in_the_metadata(wheel: pathlib.Path) -> None:
    declared = {
        group: dict(entries) for group, entries in PYPROJECT["project"].get("entry-points", {}).items()
    }
    for key, group in (("scripts", "console_scripts"), ("gui-scripts", "gui_scripts")):
        if key in PYPROJECT["project"]:
            declared[group] = dict(PYPROJECT["project"][key])
    assert declared["pytest11"] == {"calltransfer": f"{PACKAGE}.pytest_plugin"}
    text = wheel_metadata(wheel, "entry_points.txt")
    found: dict[str, dict[str, str]] = {}
    group = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            group = line.strip("[]")
            found[group] = {}
        elif "=" in line:
            name, _, value = line.partition("=")
            found[group][name.strip()] = value.strip()
    assert found == declared


INSTALLED_CHECK = textwrap.dedent(
    """
    import importlib
    import importlib.metadata
    import json
    import os
    import pathlib
    import pkgutil
    import sys

    target = pathlib.Path(os.environ["INSTALLED_TARGET"])

    import flask_calltransfer
    from flask import Flask
    from flask_calltransfer import CallTransfer, NumberDestination, testing

    modules = {}
    for info in pkgutil.walk_packages(flask_calltransfer.__path__, "flask_calltransfer."):
        module = importlib.import_module(info.name)
        modules[info.name] = str(pathlib.Path(module.__file__).resolve())

    (dist,) = importlib.metadata.distributions(path=[str(target)])
    plugins = [
        (ep.name, ep.value, ep.load().__name__) for ep in dist.entry_points.select(group="pytest11")
    ]

    app = Flask("installed")
    app.config.update(CALLTRANSFER_VAPI_SECRET=sys.argv[1], CALLTRANSFER_STORE_URL="memory://")
    transfers = CallTransfer(app)

    @transfers.on_request
    def route(call):
        return NumberDestination("+31 20 794 8450")

    body = testing.dumps(testing.vapi_transfer_request(text="sales please"))
    response = app.test_client().post(
        "/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(sys.argv[1])
    )
    print(json.dumps({
        "version": flask_calltransfer.__version__,
        "file": str(pathlib.Path(flask_calltransfer.__file__).resolve()),
        "py_typed": (pathlib.Path(flask_calltransfer.__file__).parent / "py.typed").is_file(),
        "modules": modules,
        "dist": [dist.metadata["Name"], dist.version],
        "plugins": plugins,
        "status": response.status_code,
        "reply": response.get_json(),
    }))
    """
)


def test_the_installed_copy_works_on_its_own(installed: pathlib.Path, tmp_path: pathlib.Path) -> None:
    script = tmp_path / "check_installed.py"
    script.write_text(INSTALLED_CHECK, encoding="utf-8")
    result = run_installed(installed, tmp_path, str(script), SECRET)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    target = installed.resolve()
    assert report["version"] == source_version()
    assert pathlib.Path(report["file"]) == target / PACKAGE / "__init__.py"
    assert report["py_typed"] is True
    expected_modules = {
        ".".join(pathlib.PurePosixPath(name).with_suffix("").parts).removesuffix(".__init__")
        for name in source_files()
        if name.endswith(".py")
    } - {PACKAGE}
    assert set(report["modules"]) == expected_modules
    assert source_packages() - {PACKAGE} <= set(report["modules"])
    for module, path in report["modules"].items():
        assert pathlib.Path(path).is_relative_to(target), (module, path)
    assert report["dist"] == [PYPROJECT["project"]["name"], source_version()]
    assert report["plugins"] == [["calltransfer", f"{PACKAGE}.pytest_plugin", f"{PACKAGE}.pytest_plugin"]]
    assert report["status"] == 200
    assert report["reply"]["destination"]["number"] == "+31207948450"


PLUGIN_CONFTEST = textwrap.dedent(
    """
    import pytest
    from flask import Flask
    from flask_calltransfer import CallTransfer


    @pytest.fixture
    def app():
        app = Flask("installed")
        app.config.update(TESTING=True, CALLTRANSFER_VAPI_SECRET={secret!r})
        transfers = CallTransfer(app)

        @transfers.on_request
        def route(call):
            if "sales" in call.text:
                return "+31 20 794 8450"

        return app
    """
).format(secret=SECRET)

PLUGIN_TEST = textwrap.dedent(
    """
    import os
    import pathlib

    import flask_calltransfer.pytest_plugin


    def test_the_plugin_comes_from_the_installed_copy(calltransfer_vapi):
        plugin = pathlib.Path(flask_calltransfer.pytest_plugin.__file__).resolve()
        assert plugin.is_relative_to(pathlib.Path(os.environ["INSTALLED_TARGET"]))
        response = calltransfer_vapi.transfer_request("sales please")
        assert response.json["destination"]["number"] == "+31207948450"
    """
)


def test_pytest_loads_the_installed_plugin(installed: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """The ``pytest11`` entry point works: the fixtures are there without any import or ``-p``."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(PLUGIN_CONFTEST, encoding="utf-8")
    (project / "test_routing.py").write_text(PLUGIN_TEST, encoding="utf-8")
    result = run_installed(
        installed,
        project,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        "--rootdir",
        str(project),
        "test_routing.py",
    )
    assert "1 passed" in result.stdout
