"""`make test` installs the Debian packages it needs, or stops and says how (tools/system-packages).

The Makefile's own target runs with a PATH that has neither redis-server nor chromium; `id`,
`sudo` and `apt-get` are small stand-ins on that PATH, so the test sees what would be run without
touching the machine's packages.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

from tests.servers import ROOT

MAKE = shutil.which("make")


def _tool(folder: pathlib.Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def _bin(tmp_path: pathlib.Path, *, uid: int) -> pathlib.Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    _tool(folder, "id", f"echo {uid}\n")
    (folder / "env").symlink_to(shutil.which("env") or "/usr/bin/env")
    # Records its arguments; an install puts the packages' commands on PATH, as Debian's would
    # (postgresql's is pg_createcluster, the others are named after their package).
    _tool(
        folder,
        "apt-get",
        f'echo "$*" >> {tmp_path}/apt.log\n'
        'if [ "$1" = install ]; then\n'
        '  for word in "$@"; do case $word in -*|install) ;; *)\n'
        '    command=$word; [ "$word" = postgresql ] && command=pg_createcluster\n'
        f'    printf "#!/bin/sh\\n" > {folder}/$command; /bin/chmod +x {folder}/$command;;\n'
        "  esac; done\nfi\n",
    )
    return folder


def _make(folder: pathlib.Path, target: str = "system-packages-test") -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(ROOT), target],
        env={"PATH": str(folder), "HOME": os.environ.get("HOME", "/")},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_as_root_the_missing_packages_are_installed(tmp_path: pathlib.Path) -> None:
    folder = _bin(tmp_path, uid=0)
    result = _make(folder)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "apt.log").read_text().splitlines()
    assert log == ["update -qq", "install -y -qq redis-server chromium curl openssl postgresql"]
    assert (folder / "redis-server").exists() and (folder / "chromium").exists()
    # A second run finds them and installs nothing.
    assert _make(folder).returncode == 0
    assert len((tmp_path / "apt.log").read_text().splitlines()) == 2


def test_with_passwordless_sudo_apt_get_runs_through_sudo(tmp_path: pathlib.Path) -> None:
    folder = _bin(tmp_path, uid=1000)
    _tool(folder, "sudo", f'echo "sudo $*" >> {tmp_path}/sudo.log\nshift\n"$@"\n')
    result = _make(folder)
    assert result.returncode == 0, result.stderr
    sudo = (tmp_path / "sudo.log").read_text().splitlines()
    assert sudo[0] == "sudo -n true"
    assert any(
        "apt-get install -y -qq redis-server chromium curl openssl postgresql" in line for line in sudo
    )


def test_without_root_it_stops_before_the_tests_and_prints_the_command(tmp_path: pathlib.Path) -> None:
    folder = _bin(tmp_path, uid=1000)
    # sudo that wants a password: `sudo -n` fails.
    _tool(folder, "sudo", "exit 1\n")
    result = _make(folder, "test")
    assert result.returncode != 0
    assert "sudo apt-get install -y redis-server chromium curl openssl postgresql" in result.stderr
    assert not (tmp_path / "apt.log").exists()
    # It stopped before lint, the venv or pytest ran.
    assert "ruff" not in result.stdout + result.stderr
    assert "pytest" not in result.stdout + result.stderr
