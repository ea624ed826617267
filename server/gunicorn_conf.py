"""gunicorn's settings for production: `gunicorn -c python:server.gunicorn_conf server.wsgi:app`.

Sync workers, as many as the cores (the till's calls are CPU-bound in Python and short; a
buffering proxy, nginx, stands in front so a slow client never holds a worker). Every setting
can be overridden on the command line or with GUNICORN_CMD_ARGS.

With PROMETHEUS_MULTIPROC_DIR set (an empty directory, emptied at each start), every worker
keeps its metrics there and /metrics adds them up; a worker that exits is marked dead so its
gauges stop counting.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from prometheus_client import multiprocess

bind = os.environ.get("LOYALTY_BIND", "127.0.0.1:8000")
worker_class = "sync"
workers = int(os.environ.get("LOYALTY_WORKERS", multiprocessing.cpu_count()))
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 10_000  # a worker is replaced now and then; jitter keeps them apart
max_requests_jitter = 1_000
# The access log, a JSON line per request with the id the app puts in every answer and every
# log line of the request. Not the path nor the query: a path can hold a card number, a query
# an email or a phone (LOYALTY_ACCESS_LOG=true logs the route from the app instead).
accesslog = "-"
access_log_format = (
    '{"log": "access", "method": "%(m)s", "status": %(s)s, "bytes": "%(b)s", "ms": %(M)s, '
    '"pid": "%(p)s", "request_id": "%({x-request-id}o)s"}'
)


def child_exit(_server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
