"""Clean stops: SIGINT/SIGTERM become a request to stop after the chunk in progress."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from engine.io.chunks import log

# --------------------------------------------------------------------------- clean stops


class StopFlag:
    """Set by SIGINT/SIGTERM; the chunk loops look at it after each chunk."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


@contextmanager
def stop_on_signals():
    """Turn the first SIGINT/SIGTERM into a request to stop after the current chunk; a second
    SIGINT interrupts at once. Outside the main thread (where handlers cannot be set) it does nothing."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag.signum = signum
        log.warning("%s received: stopping after the chunk in progress", signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
