"""Group commit for intake: inquiries that arrive while one transaction is being written are
stored together in the next, so a burst costs one commit (one fsync) per group instead of one
per inquiry. Each caller still gets its answer only once its inquiry is committed."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from . import InquiryRecord, InquiryStore, NewInquiry

log = logging.getLogger(__name__)

Stored = tuple[InquiryRecord, bool]


@dataclass
class _Pending:
    new: NewInquiry
    idempotency_key: str | None
    loop: asyncio.AbstractEventLoop
    answer: asyncio.Future[Stored]

    def settle(self, outcome: Stored | BaseException) -> None:
        """Hand the outcome to the waiting request, on its own event loop (stored all the
        same if that loop has closed meanwhile: the writer must go on for the others)."""
        try:
            self.loop.call_soon_threadsafe(_settle, self.answer, outcome)
        except RuntimeError:
            log.warning("a request went away before its inquiry was committed; it is stored")


def _settle(answer: asyncio.Future[Stored], outcome: Stored | BaseException) -> None:
    if answer.done():  # the request went away meanwhile; the inquiry is stored all the same
        return
    if isinstance(outcome, BaseException):
        answer.set_exception(outcome)
    else:
        answer.set_result(outcome)


class IntakeWriter:
    """One thread writes every inquiry submitted, in groups of up to ``max_group``."""

    def __init__(self, store: InquiryStore, max_group: int = 256) -> None:
        self.store = store
        self.max_group = max_group
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="intake", daemon=True)
        self._thread.start()

    async def add(self, new: NewInquiry, idempotency_key: str | None = None) -> Stored:
        """The inquiry's record and whether it was created, once committed (or the error
        ``InquiryStore.add`` would raise)."""
        loop = asyncio.get_running_loop()
        pending = _Pending(new, idempotency_key, loop, loop.create_future())
        self._queue.put(pending)
        return await pending.answer

    def close(self) -> None:
        """Write what was submitted, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, stop = [first], False
            while len(group) < self.max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group.append(more)
            self._write(group)
            if stop:
                return

    def _write(self, group: list[_Pending]) -> None:
        try:
            outcomes = self.store.add_batch([(p.new, p.idempotency_key) for p in group])
        except Exception as error:  # a key raced in by another process, or the database
            log.warning("a group of %d failed (%s); storing each on its own", len(group), error)
            for pending in group:
                try:
                    pending.settle(self.store.add(pending.new, pending.idempotency_key))
                except Exception as each:
                    pending.settle(each)
            return
        for pending, outcome in zip(group, outcomes, strict=True):
            pending.settle(outcome)
