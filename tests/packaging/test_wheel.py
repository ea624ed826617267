"""The package as a release ships it: built into a wheel, installed (not in editable mode) into
a fresh virtual environment, it migrates a database, seeds the demo and serves, with its data
under the working directory's instance/ and nothing written inside site-packages.

The fresh environment installs only the wheel, offline; the libraries it depends on are taken
from the test environment through a .pth line (a path entry, so none of that environment's
own packages, the editable checkout included, is activated)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import free_port, project_root


def _run(*command: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter, tools and paths
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "instance", "node_modules"
)


def _copy_of_the_sources(target: Path) -> Path:
    """The checkout as a release is built from: no build/ or egg-info left by an earlier build
    (setuptools would pack their stale files), and nothing written into the checkout."""
    shutil.copytree(project_root(), target, ignore=IGNORED)
    return target


def _wait_for(url: str, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                return int(answer.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_the_built_wheel_installs_migrates_seeds_and_serves_from_a_fresh_environment(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["PIP_NO_INDEX"] = "1"  # nothing is fetched: the wheel is all there is to install
    wheels = tmp_path / "dist"
    source = _copy_of_the_sources(tmp_path / "source")
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", wheels, source, cwd=tmp_path, env=env,
    )  # fmt: skip
    [wheel] = wheels.glob("loyalty-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", wheel, cwd=tmp_path, env=env)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp_path, env=env).strip())  # fmt: skip
    (site / "dependencies-of-the-test-environment.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    work = tmp_path / "shop"
    work.mkdir()
    installed = _run(python, "-c", "import loyalty, server; print(loyalty.__file__)", cwd=work,
                     env=env)  # fmt: skip
    assert installed.startswith(str(site)), "the wheel's package, not the checkout"
    packed = {path.relative_to(site).as_posix() for path in site.glob("api/**/*.py")}
    tracked = {path.relative_to(project_root()).as_posix()
               for path in project_root().glob("api/**/*.py")}  # fmt: skip
    assert packed == tracked, "the wheel holds the sources as they are, and only them"

    loyalty = venv / "bin" / "loyalty"
    assert "database created" in _run(loyalty, "migrate", cwd=work, env=env)
    assert "database already current" in _run(loyalty, "migrate", cwd=work, env=env)
    assert "demo store DEMO-01: created" in _run(loyalty, "seed-demo", cwd=work, env=env)
    assert (work / "instance" / "loyalty.sqlite3").is_file()
    assert not list(site.glob("**/instance")), "nothing is written inside site-packages"

    port = free_port()
    log = work / "gunicorn.log"
    with log.open("w") as log_file:
        _serve(python, port, work, env, log_file, log)


def _serve(
    python: Path, port: int, work: Path, env: dict[str, str], log_file: IO[str], log: Path
) -> None:
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [python, "-m", "gunicorn", "--workers", "1", "--bind", f"127.0.0.1:{port}",
         "server.wsgi:app"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )  # fmt: skip
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/health", seconds=30) == 200, log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
