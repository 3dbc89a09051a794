"""Micro-batching of concurrent chat requests onto one blocking backend.

A local model answers 16 prompts in one padded batch at a fraction of the cost of 16
separate calls, but HTTP clients send one prompt per request. One worker thread takes
the first queued request, waits a few milliseconds for others (up to the backend's
batch size) with the *same* sampling settings, and calls ``backend.generate`` once for
them all; requests with other settings wait for the next round. Generation thus runs
off the event loop, one batch at a time, and callers await a future.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from slimrec.llm.backends.base import Backend, ChatRequest, SamplingConfig


@dataclass
class _Job:
    request: ChatRequest
    sampling: SamplingConfig
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """Collect requests for ``wait_s`` seconds (at most ``max_batch``) and run them together."""

    def __init__(self, backend: Backend, *, max_batch: int = 16, wait_s: float = 0.05):
        self.backend = backend
        self.max_batch = max(1, max_batch)
        self.wait_s = wait_s
        self.batch_sizes: list[int] = []  # observable: how requests were grouped
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._held: deque[_Job] = deque()  # jobs whose sampling differed from the last batch
        self._thread = threading.Thread(target=self._run, name="slimrec-batcher", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, request: ChatRequest, sampling: SamplingConfig) -> Future:
        if self._closed:
            raise RuntimeError("the batcher is closed")
        job = _Job(request, sampling)
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _next(self, timeout: float | None) -> _Job | None:
        """The oldest held job, else the next queued one (None on close or timeout)."""
        if self._held:
            return self._held.popleft()
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _run(self) -> None:
        while True:
            # Once closed, drain what is left without blocking, then stop.
            first = self._next(0.0 if self._closed else None)
            if first is None:
                if self._closed:
                    break
                continue
            batch, others = [first], []
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                job = self._next(max(0.0, deadline - time.monotonic()))
                if job is None:
                    if self._closed or time.monotonic() >= deadline:
                        break
                    continue
                (batch if job.sampling == first.sampling else others).append(job)
            self._held.extend(others)
            live = [j for j in batch if j.future.set_running_or_notify_cancel()]
            if live:
                self.batch_sizes.append(len(live))
                self._execute(live)

    def _execute(self, jobs: list[_Job]) -> None:
        try:
            answered: set[int] = set()
            for i, completion in self.backend.generate([j.request for j in jobs], jobs[0].sampling):
                answered.add(i)
                jobs[i].future.set_result(completion)
            for i, j in enumerate(jobs):
                if i not in answered:
                    j.future.set_exception(RuntimeError("the backend returned no answer"))
        except Exception as e:  # one failing batch must not stop the worker
            pending = [j for j in jobs if not j.future.done()]
            if len(pending) > 1:
                # One bad request (e.g. too long) must not fail its neighbours: retry alone.
                for j in pending:
                    self._execute([j])
            else:
                for j in pending:
                    j.future.set_exception(e)
