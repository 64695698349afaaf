"""`MicroBatcher`: requests arriving together are answered by one recommend() call on a worker thread."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# run_batch(histories, key) -> one result per history; key holds the settings every history in the batch shares.
BatchFunction = Callable[[list[list[int]], Hashable], Sequence[Any]]


class QueueFull(RuntimeError):
    """The waiting queue is at capacity; the HTTP layer answers 503."""


@dataclass
class _Job:
    histories: list[list[int]]
    key: Hashable
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Collects concurrent requests with the same key into one batch of at most `max_batch` histories.

    The oldest waiting request waits at most `max_wait_s` for company, but only when company is likely: when the
    previous batch held several requests or several wait already (a lone client never pays the wait). While the
    worker is busy, requests pile up and the next batch takes them all at once. At most `max_queue` requests may
    wait; `submit` raises QueueFull beyond that. Requests with different keys (the server's: the beam count) never
    share a batch. A submit wakes the worker only when it has to (first request, or a full batch): each wake-up
    costs the submitting thread a GIL hand-off while the worker decodes.
    """

    def __init__(self, run_batch: BatchFunction, max_batch: int, max_wait_s: float, max_queue: int):
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError(
                "MicroBatcher needs max_batch >= 1, max_queue >= 1, max_wait_s >= 0; "
                f"got {max_batch}, {max_queue}, {max_wait_s}"
            )
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._pending: deque[_Job] = deque()
        self._queued: Counter[Hashable] = Counter()  # histories waiting, per key
        self._condition = threading.Condition()
        self._stopping = False
        self._in_flight = 0
        self._batches = 0
        self._last_batch_requests = 0
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        if self._worker is not None:
            raise RuntimeError("MicroBatcher already started")
        self._stopping = False
        self._worker = threading.Thread(target=self._loop, name="lcrec-batcher", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the running batch finish, fail the requests still waiting, and stop the worker."""
        with self._condition:
            self._stopping = True
            cancelled = list(self._pending)
            self._pending.clear()
            self._queued.clear()
            self._condition.notify_all()
        for job in cancelled:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None

    def submit(self, histories: list[list[int]], key: Hashable) -> Future:
        """Queue one request; its future resolves to one result per history."""
        job = _Job(histories, key)
        with self._condition:
            if self._stopping or self._worker is None:
                raise RuntimeError("MicroBatcher is not running")
            if len(self._pending) >= self.max_queue:
                raise QueueFull(
                    f"server busy: {len(self._pending)} requests already waiting "
                    f"(queue capacity {self.max_queue}); retry later"
                )
            was_idle = not self._pending
            self._pending.append(job)
            self._queued[key] += len(histories)
            if was_idle or self._queued[key] >= self.max_batch:
                self._condition.notify_all()
        return job.future

    def stats(self) -> dict[str, int]:
        """Waiting requests, histories being computed now, and batches run so far."""
        with self._condition:
            return {
                "waiting": len(self._pending),
                "in_flight": self._in_flight,
                "batches": self._batches,
                "capacity": self.max_queue,
            }

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[_Job] | None:
        """Wait for work, give the oldest request up to max_wait_s to gather company, take a batch."""
        with self._condition:
            while not self._pending:
                if self._stopping:
                    return None
                self._condition.wait()
            first = self._pending[0]
            crowded = self._last_batch_requests > 1 or len(self._pending) > 1
            deadline = first.enqueued + (self.max_wait_s if crowded else 0.0)
            while not self._stopping:
                ready = self._queued[first.key]
                remaining = deadline - time.monotonic()
                if ready >= self.max_batch or remaining <= 0:
                    break
                self._condition.wait(remaining)
            if not self._pending:  # stop() cancelled everything while we waited
                return None
            batch, size = [], 0
            for job in list(self._pending):
                if job.key != first.key:
                    continue
                if batch and size + len(job.histories) > self.max_batch:
                    break
                batch.append(job)
                size += len(job.histories)
            for job in batch:
                self._pending.remove(job)
                self._queued[job.key] -= len(job.histories)
            # A request whose caller went away (cancelled future) is dropped, not computed.
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            self._in_flight = sum(len(job.histories) for job in batch)
            self._last_batch_requests = len(batch)
            return batch

    def _run(self, batch: list[_Job]) -> None:
        if not batch:
            return
        histories = [history for job in batch for history in job.histories]
        try:
            results = self.run_batch(histories, batch[0].key)
            if len(results) != len(histories):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(histories)} histories")
        except BaseException as error:  # every waiting request must hear about the failure
            logger.exception("batch of %d histories failed", len(histories))
            for job in batch:
                job.future.set_exception(error)
        else:
            start = 0
            for job in batch:
                job.future.set_result(list(results[start : start + len(job.histories)]))
                start += len(job.histories)
        finally:
            with self._condition:
                self._in_flight = 0
                self._batches += 1
