"""Command line: `python -m service serve`, `python -m service export-openapi`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def openapi_text() -> str:
    from service.app import create_app

    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description="gradient-service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service with uvicorn")
    serve.add_argument("--host", default=None, help="default: GRADIENT_SERVICE_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: GRADIENT_SERVICE_PORT or 8000")
    serve.add_argument("--workers", type=int, default=None, help="default: WEB_CONCURRENCY or 1")
    export = sub.add_parser("export-openapi", help="write the OpenAPI document")
    export.add_argument("path", nargs="?", default=str(OPENAPI_PATH))
    export.add_argument("--check", action="store_true", help="exit 1 if the file differs instead of writing it")
    args = parser.parse_args(argv)

    if args.command == "export-openapi":
        text = openapi_text()
        path = Path(args.path)
        if args.check:
            if not path.exists() or path.read_text() != text:
                print(f"{path} is stale: run `python -m service export-openapi`", file=sys.stderr)
                return 1
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
        return 0

    import os
    import signal

    import uvicorn

    from service.settings import get_settings

    settings = get_settings()
    if not settings.redis_url:
        # the attempts database, checked once before any worker starts: an unwritable data directory
        # stops the service here with one clear message (each worker's lifespan would refuse it too)
        from service.http.security.attempts import AttemptStoreError, SqliteAttemptStore

        store = SqliteAttemptStore(settings.data_dir)
        try:
            store.open_sync()
        except AttemptStoreError as exc:
            print(f"gradient-service: refusing to start: {exc}", file=sys.stderr)
            return 1
        finally:
            store.close_sync()
    workers = args.workers or int(os.environ.get("WEB_CONCURRENCY", "1"))
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:  # multiprocess metrics: start from an empty directory, before any worker writes
        path = Path(metrics_dir)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    from service.observability import log_config  # after the directory is ready: it loads prometheus_client

    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the handler that was
    # there before it: make that an exit with status 0, since the shutdown was an orderly one.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:  # httptools, bounded (service/server/protocol.py); h11's own bound where httptools is not installed
        from service.server.protocol import ServiceHttpProtocol

        http: type[ServiceHttpProtocol] | str = ServiceHttpProtocol
    except ImportError:
        http = "h11"
    options: dict[str, Any] = {
        "http": http,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "host": args.host or settings.host,
        "port": args.port or settings.port,
        "workers": workers,
        "log_level": settings.log_level,
        "log_config": log_config(settings.log_level),
        "access_log": False,  # service.access logs each request as JSON, with its request id
        # the client's address (for throttling failed authentications) from X-Forwarded-For, only when
        # the TCP peer is one of the trusted proxies
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or None,
    }
    if workers > 1:
        # uvicorn.run's supervisor, which closes its copy of the listening socket on SIGTERM: new
        # connections are then served or refused, never queued for no one (service/server/supervisor.py)
        from service.server.supervisor import ClosingMultiprocess

        config = uvicorn.Config("service.app:app", **options)
        ClosingMultiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.run("service.app:app", **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
