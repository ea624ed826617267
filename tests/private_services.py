"""A PostgreSQL cluster and a Redis server of a test's own, on free loopback ports, to restart,
stop and freeze (SIGSTOP) without touching the shared ones on 5432 and 6379. Used by
tests/integration/test_staying_up.py and bench/faults.py.

PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the `postgres` user
and its commands run through `runuser`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

_PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries installed, if any."""
    for directory in _PG_BINS:
        if (directory / "initdb").exists():
            return directory
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@dataclass
class PrivatePostgres:
    """`with PrivatePostgres() as pg:` a running cluster; `pg.url` reaches its `postgres`
    database as the `postgres` user (trust, loopback only)."""

    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="loyalty-pg-")))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(  # noqa: S603 - our own commands
            [*prefix, *command], check=True, capture_output=True, timeout=120
        )

    def _ctl(self, *args: str) -> None:
        binaries = postgres_bin()
        assert binaries is not None
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(binaries / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
            "-l", str(self.root / "log"), *args,
        )  # fmt: skip

    def __enter__(self) -> Self:
        binaries = postgres_bin()
        assert binaries is not None, "PostgreSQL's server binaries are not installed"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(binaries / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.thaw()
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped already
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """What an operator's restart does: clients are told their connections end."""
        self._ctl("restart", "-m", "fast")

    def _pids(self) -> list[int]:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return []
        postmaster = int(pid_file.read_text().splitlines()[0])
        return [postmaster, *_children(postmaster)]

    def freeze(self) -> None:
        """Every process of the cluster stopped (SIGSTOP): sockets open, nothing answers."""
        _signal_all(self._pids(), signal.SIGSTOP)

    def thaw(self) -> None:
        _signal_all(self._pids(), signal.SIGCONT)


@dataclass
class PrivateRedis:
    """`with PrivateRedis() as redis:` a running redis-server; `redis.url` reaches db 0."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = shutil.which("redis-server") or "redis-server"
        command = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen(  # noqa: S603
            [*command, "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        msg = "redis-server did not start"
        raise RuntimeError(msg)

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def freeze(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
