"""The wire contract, the SDK and the load bots load without Django, Celery or the server."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.procs import ROOT

# What a game developer's process must never load by importing the SDK.
SERVER_MODULES = ("django", "celery", "channels", "daphne", "gamebackend.settings")
BUILD_TIMEOUT_S = 120
IMPORT_TIMEOUT_S = 30


def loaded_after(statement: str, *, cwd: Path, pythonpath: str = "") -> list[str]:
    """The server modules a fresh interpreter has loaded after running ``statement``."""
    check = (
        f"{statement}\nimport sys\n"
        f"print(','.join(m for m in {SERVER_MODULES!r} if m in sys.modules))\n"
        "import os; print(os.environ.get('DJANGO_SETTINGS_MODULE', ''))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        check=True,
    )
    modules, settings_module = result.stdout.splitlines()[-2:]
    assert settings_module == "", "importing it set DJANGO_SETTINGS_MODULE"
    return [m for m in modules.split(",") if m]


def test_import_gameclient_loads_no_django_or_celery() -> None:
    # The issue's own check, verbatim.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import gameclient, sys; "
            "assert 'django' not in sys.modules and 'celery' not in sys.modules",
        ],
        cwd=ROOT,
        check=True,
        timeout=IMPORT_TIMEOUT_S,
    )
    assert loaded_after("import gameclient", cwd=ROOT) == []


@pytest.mark.parametrize(
    "module", ["gameproto", "gameproto.tickets", "gamebackend.loadtest.bots", "actors"]
)
def test_shared_packages_load_no_server(module: str) -> None:
    assert loaded_after(f"import {module}", cwd=ROOT) == []


@pytest.mark.slow
def test_sdk_installs_and_imports_without_the_server(tmp_path: Path) -> None:
    """`pip install ./sdk/python` gives gameclient + gameproto and nothing of the server."""
    wheels, target, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "app"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), "sdk/python"],
        cwd=ROOT,
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    (wheel,) = wheels.glob("gameclient-*.whl")
    packages = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert packages == {"gameclient", "gameproto", wheel.name.split("-py3")[0] + ".dist-info"}
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=BUILD_TIMEOUT_S,
    )
    # Run from a folder outside the checkout, so only the installed copy can be imported.
    statement = (
        f"import gameclient, gameproto\n"
        f"assert gameclient.__file__.startswith({str(target)!r}), gameclient.__file__\n"
        f"assert gameproto.__file__.startswith({str(target)!r}), gameproto.__file__"
    )
    assert loaded_after(statement, cwd=elsewhere, pythonpath=str(target)) == []
