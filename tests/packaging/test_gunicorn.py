"""The app as production runs it: gunicorn with server/gunicorn_conf.py, two sync workers,
metrics in multiprocess mode. Whichever worker answers a scrape, /metrics counts the requests
every worker served, and each answer carries its request id in gunicorn's access log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import free_port, project_root


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return int(refused.code), refused.read().decode()


def _post(url: str, body: dict[str, str], headers: dict[str, str]) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def _wait_until_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while _get_or_none(f"{base}/health") != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(base)
        time.sleep(0.2)


def _wait_for_both_workers(base: str, log: Path) -> None:
    """Until each of the two workers has answered a health check (the second may still be
    loading the app when the first answers)."""
    deadline = time.monotonic() + 30
    while len({line["pid"] for line in _access(log) if line["method"] == "GET"}) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the second worker never answered")
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _n: _get_or_none(f"{base}/health"), range(4)))


def _access(log: Path) -> list[dict[str, object]]:
    """gunicorn's access log lines (JSON)."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("log") == "access"]


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url)[0]
    except OSError:
        return None


def _identify_count(metrics: str) -> float:
    pattern = re.compile(
        r'^loyalty_http_request_duration_seconds_count\{endpoint="pos\.identify_member",'
        r'method="POST",status="(\d+)"\} ([\d.e+]+)$',
        re.MULTILINE,
    )
    return sum(float(count) for _status, count in pattern.findall(metrics))


@pytest.mark.slow
def test_two_gunicorn_workers_report_every_request_in_one_scrape(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    port = free_port()
    env |= {
        "LOYALTY_INSTANCE_PATH": str(tmp_path / "instance"),
        "LOYALTY_PUBLIC_METRICS": "true",
        "LOYALTY_BIND": f"127.0.0.1:{port}",
        "LOYALTY_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    cli = [sys.executable, "-m", "loyalty.cli"]
    for command in (["migrate"], ["seed-demo"]):
        subprocess.run([*cli, *command], env=env, check=True, capture_output=True, timeout=120)  # noqa: S603
    key = (tmp_path / "instance" / "demo-till-key").read_text().strip()
    log = tmp_path / "gunicorn.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf",
             "server.wsgi:app"],
            cwd=project_root(),
            env=env,
            stdout=log_file,
            stderr=log_file,
        )  # fmt: skip
        try:
            _wait_until_up(base)
            _wait_for_both_workers(base, log)
            headers = {"Authorization": f"Bearer {key}"}
            # at once, so that both workers take some (a sync worker serves one at a time)
            with ThreadPoolExecutor(max_workers=10) as pool:
                statuses = list(
                    pool.map(
                        lambda _n: _post(
                            f"{base}/api/v1/pos/identify", {"code": "ada@example.com"}, headers
                        ),
                        range(20),
                    )
                )
            assert statuses == [200] * 20
            counts = {_identify_count(_get(f"{base}/metrics")[1]) for _ in range(10)}
            tagged = _post(
                f"{base}/api/v1/pos/identify",
                {"code": "ada@example.com"},
                headers | {"X-Request-ID": "till-9:000123"},
            )
            assert tagged == 200
            with urllib.request.urlopen(f"{base}/health", timeout=5) as health:  # noqa: S310
                server_header = health.headers["Server"]
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert counts == {20.0}, f"every scrape counts both workers' requests: {counts}"
    assert server_header == "gunicorn", "no version named"
    served_by = {line["pid"] for line in _access(log) if line["method"] == "POST"}
    assert len(served_by) == 2, "both workers served some of the requests"
    assert "till-9:000123" in {line["request_id"] for line in _access(log)}
    assert "/api/" not in log.read_text(), "no path in the access log: it can hold a card number"
