"""One computation outside the caller's thread, with progress and a stop request.

The pattern of :mod:`medviz.services.jobs` for work other than training (a
concept test, a long projection): the page starts a :class:`BackgroundCall`,
keeps it in the session's state, and polls :meth:`BackgroundCall.snapshot` from
an ``st.fragment(run_every=…)``; the thread writes only to the call object,
under its lock. The function receives ``on_progress(done, total, message)``
and ``should_stop()`` keyword arguments.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from medviz.errors import MedvizError

log = logging.getLogger(__name__)

CallStatus = Literal["starting", "running", "finished", "stopped", "failed"]


@dataclass(frozen=True)
class CallSnapshot:
    """A consistent copy of a call's progress, for display.

    Attributes:
        status: Where the call is.
        fraction: Done, in ``[0, 1]``.
        message: The last progress message (or the error).
        elapsed_s: Seconds since the start.
        result: The function's return value once finished, else ``None``.
        error: One sentence when it failed or was stopped.
    """

    status: CallStatus
    fraction: float
    message: str
    elapsed_s: float
    result: Any
    error: str | None


@dataclass
class BackgroundCall:
    """``function(on_progress=…, should_stop=…)`` running in a daemon thread.

    Attributes:
        function: The work; keyword arguments ``on_progress`` and ``should_stop``
            are passed to it.
        title: What it is, for people.
        context: What the call belongs to (model token, inputs), so a page can
            tell whether a kept call still matches its widgets.
    """

    function: Callable[..., Any]
    title: str
    context: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _status: CallStatus = "starting"
    _fraction: float = 0.0
    _message: str = "starting…"
    _result: Any = None
    _error: str | None = None
    _started: float = 0.0
    _ended: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> BackgroundCall:
        """Start the thread; returns the call itself."""
        self._started = time.perf_counter()
        threading.Thread(target=self._run, name=f"medviz-{self.id}", daemon=True).start()
        return self

    def _progress(self, done: int, total: int, message: str) -> None:
        with self._lock:
            self._status = "running"
            self._fraction = min(1.0, done / max(total, 1))
            self._message = message

    def _run(self) -> None:
        try:
            result = self.function(on_progress=self._progress, should_stop=self._stop.is_set)
        except MedvizError as err:
            with self._lock:
                self._status = "stopped" if self._stop.is_set() else "failed"
                self._error = str(err)
        except Exception as err:  # a bug must not kill the thread silently
            log.exception("background call %s failed", self.title)
            with self._lock:
                self._status = "failed"
                self._error = f"{type(err).__name__}: {err}"
        else:
            with self._lock:
                self._status = "finished"
                self._fraction = 1.0
                self._result = result
        finally:
            with self._lock:
                self._ended = time.perf_counter()

    def stop(self) -> None:
        """Ask the function to stop at its next ``should_stop()`` check."""
        self._stop.set()

    @property
    def running(self) -> bool:
        """Whether the thread is still working."""
        with self._lock:
            return self._status in ("starting", "running")

    def snapshot(self) -> CallSnapshot:
        """A consistent copy of the call's progress."""
        with self._lock:
            end = self._ended if self._ended is not None else time.perf_counter()
            return CallSnapshot(
                status=self._status,
                fraction=self._fraction,
                message=self._error or self._message,
                elapsed_s=end - self._started if self._started else 0.0,
                result=self._result,
                error=self._error,
            )

    def wait(self, timeout: float = 60.0) -> CallSnapshot:
        """Block until the call ends (or ``timeout`` seconds pass); returns its snapshot."""
        deadline = time.perf_counter() + timeout
        while self.running and time.perf_counter() < deadline:
            time.sleep(0.02)
        return self.snapshot()
