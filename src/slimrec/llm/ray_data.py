"""Chat requests answered across a Ray cluster, one shard per ``generate`` call.

Each replica (a Ray actor of :func:`slimrec.cluster.map_shards`) builds one backend with
``make_backend`` and answers whole shards, each with one ``backend.generate`` call,
exactly as the one-process path answers that shard: greedy answers are the same either
way, and the caller stores each shard's answers as it returns. Requests and completions
travel as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict

from slimrec.cluster import RayConfig, map_shards
from slimrec.llm.backends.base import Backend, ChatRequest, Completion, SamplingConfig


def generate_shards(
    shards: Mapping[int, Sequence[ChatRequest]],
    make_backend: Callable[[], Backend],
    sampling: SamplingConfig,
    config: RayConfig,
) -> Iterator[tuple[int, list[Completion]]]:
    """Yield ``(shard, its completions in request order)`` as each shard is answered."""
    payloads = {s: json.dumps([asdict(r) for r in requests]) for s, requests in shards.items()}
    worker = _Answerer(make_backend, sampling)
    for s, result in map_shards(payloads, worker.build, config):
        yield s, [Completion(**c) for c in json.loads(result)]


class _Answerer:
    """Builds a replica's backend (in its actor) and answers a shard of requests."""

    def __init__(self, make_backend: Callable[[], Backend], sampling: SamplingConfig):
        self.make_backend = make_backend
        self.sampling = sampling
        self.backend: Backend | None = None

    def build(self) -> Callable[[str], str]:
        self.backend = self.make_backend()
        self.backend.check()
        return self.answer

    def answer(self, payload: str) -> str:
        assert self.backend is not None
        requests = [ChatRequest(**r) for r in json.loads(payload)]
        answers = dict(self.backend.generate(requests, self.sampling))
        return json.dumps([asdict(answers[i]) for i in range(len(requests))])
