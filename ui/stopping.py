"""Stopping a generation: the Stop button, a client's cancel and a closed tab.

Gradio cancels an event by cancelling the asyncio task that awaits it, but a function running in a
worker thread cannot be cancelled from outside: it would go on to its end and hold the GPU from the
next visitor. So the generation runs in a thread of its own with a stop flag, which its per-step
callback checks (`raise_if_stopped`): a cancelled task sets the flag and waits for the thread to
stop (within one denoising step), and a closed tab sets the flags of its session's generations
(`StopFlags.stop_session`, from the page's unload event).
"""

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

Result = TypeVar("Result")


class GenerationStopped(Exception):
    """Raised inside a generation whose stop flag is set, to end it at the current step."""


def raise_if_stopped(flag: threading.Event) -> None:
    if flag.is_set():
        raise GenerationStopped


class StopFlags:
    """The stop flag of every running generation, by the session that started it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flags: dict[str, set[threading.Event]] = defaultdict(set)

    @contextmanager
    def running(self, session: str) -> Iterator[threading.Event]:
        """A new flag for a generation of `session`, forgotten when the generation ends."""
        flag = threading.Event()
        with self._lock:
            self._flags[session].add(flag)
        try:
            yield flag
        finally:
            with self._lock:
                self._flags[session].discard(flag)
                if not self._flags[session]:
                    del self._flags[session]

    def stop_session(self, session: str) -> None:
        """Stop every generation of `session`."""
        with self._lock:
            flags = list(self._flags.get(session, ()))
        for flag in flags:
            flag.set()


async def run_stoppable(work: Callable[[], Result], flag: threading.Event) -> Result:
    """`work()` in a worker thread. If the awaiting task is cancelled, set `flag`, wait until the
    work has ended (it checks the flag at each step), then let the cancellation through."""
    future = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        flag.set()
        try:
            await future
        except Exception:  # GenerationStopped, or whatever ended it: the cancellation is what matters
            pass
        raise
