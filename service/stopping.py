"""A stop asked for before gunicorn's arbiter takes the signals over, or by a one-off command.

Python's default for SIGTERM ends the process where it stands, running no `finally`: `serve`
stopped while its embedded PostgreSQL started or its migrations ran left that PostgreSQL running,
orphaned, on the state directory. Here SIGTERM raises StopRequested instead, a BaseException like
KeyboardInterrupt, so that every clean-up runs; `main` then ends the process by the signal itself,
so that what started it (systemd, a shell, a supervisor) sees the death it asked for.

While an embedded server is being started, SIGTERM and SIGINT are noted and acted on once the
server is up and in the hands of its clean-up: an exception raised in the middle of its start
would leave a server running that no handle knows of.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HELD_WHILE_STARTING = (signal.SIGTERM, signal.SIGINT)


class StopRequested(SystemExit):
    """A SIGTERM reached a process that had not handed its signals to the arbiter or an event loop.

    A SystemExit, because asyncio lets only SystemExit and KeyboardInterrupt out of its transports'
    callbacks (any other BaseException there becomes a "fatal error" of one connection, and the
    stop would be lost); its code is the shell's 128 + the signal's number, should anything exit
    with it instead of `main`, which ends the process by the signal itself.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return signal.Signals(self.signum).name


def _raise_stop_requested(signum: int, frame: FrameType | None) -> None:
    # The stop is under way: another SIGTERM (a supervisor repeating itself) raised again inside
    # the clean-up, or inside `main` saying why it stops, would cut either short. `end_by` restores
    # the default to end the process by it.
    signal.signal(signum, signal.SIG_IGN)
    raise StopRequested(signum)


def stop_on_sigterm() -> None:
    """SIGTERM unwinds the command like Ctrl-C does. Gunicorn's arbiter and asyncio's signal
    handlers replace this once they run; until then, and in the one-off commands, it holds."""
    signal.signal(signal.SIGTERM, _raise_stop_requested)


def end_by(signum: int) -> None:
    """End this process by the signal that asked it to stop, its clean-up done."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT received inside are delivered on leaving, to the handlers there before:
    each signal once, in the order they came (one the process ignores does not hide the other)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set, and only run, in the main thread
        return
    received: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in HELD_WHILE_STARTING}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for held in dict.fromkeys(received):
            signal.raise_signal(held)
