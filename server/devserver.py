"""`make run`'s server: Werkzeug's development server on the embedded database, the same as
`flask run` but naming no versions (Werkzeug's handler sends `Server: Werkzeug/x Python/y`).
Production runs gunicorn (server/gunicorn_conf.py), which says only `gunicorn`.

    python -m server.devserver [--host 127.0.0.1] [--port 5000]
"""

from __future__ import annotations

import argparse

from werkzeug.serving import WSGIRequestHandler, run_simple

from server.app import create_app


class QuietRequestHandler(WSGIRequestHandler):
    def version_string(self) -> str:
        return "loyalty"


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the app with the development server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    run_simple(
        args.host,
        args.port,
        create_app(),
        threaded=True,
        request_handler=QuietRequestHandler,
    )


if __name__ == "__main__":
    main()
