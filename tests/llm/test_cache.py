"""The answer cache: keys that change with every input, and no lost rows under concurrency."""

from __future__ import annotations

import multiprocessing as mp
import queue
import sqlite3

import pytest

from slimrec.errors import SlimrecError
from slimrec.llm.backends.base import Completion, SamplingConfig
from slimrec.llm.cache import AnswerCache, cache_key

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def test_key_depends_on_every_input():
    base = cache_key("m", "v1", MESSAGES, SamplingConfig())
    assert base == cache_key("m", "v1", [dict(m) for m in MESSAGES], SamplingConfig())
    others = [
        cache_key("m2", "v1", MESSAGES, SamplingConfig()),
        cache_key("m", "v2", MESSAGES, SamplingConfig()),
        cache_key("m", "v1", [*MESSAGES[:1], {"role": "user", "content": "u "}], SamplingConfig()),
        cache_key("m", "v1", MESSAGES, SamplingConfig(temperature=0.7)),
        cache_key("m", "v1", MESSAGES, SamplingConfig(max_new_tokens=10)),
        cache_key("m", "v1", MESSAGES, SamplingConfig(seed=1)),
        cache_key("m", "v1", MESSAGES, SamplingConfig(no_repeat_ngram=12)),
    ]
    assert len({base, *others}) == 8 and len(base) == 64


def test_a_later_setting_left_off_keeps_earlier_keys():
    """no_repeat_ngram came after the first cache files: while off it is not in the key."""
    dumped = SamplingConfig().model_dump(mode="json")
    assert set(dumped) == {"max_new_tokens", "temperature", "top_p", "seed"}
    assert SamplingConfig(no_repeat_ngram=5).model_dump()["no_repeat_ngram"] == 5
    assert SamplingConfig.model_validate(dumped) == SamplingConfig()
    with pytest.raises(ValueError, match="use 0 or >= 2"):
        SamplingConfig(no_repeat_ngram=1)


def test_round_trip_first_answer_wins_and_survives_reopen(tmp_path):
    path = tmp_path / "c.sqlite"
    with AnswerCache(path) as cache:
        cache.put(
            "k1", Completion("Step 1: a", "m", 5, 7, "stop"), model_id="m", template_version="v"
        )
        cache.put("k1", Completion("other", "m"), model_id="m", template_version="v")
        assert cache.get("k2") is None
    with AnswerCache(path) as cache:
        hit = cache.get("k1")
        assert (hit.response, hit.prompt_tokens, hit.completion_tokens) == ("Step 1: a", 5, 7)
        assert hit.finish_reason == "stop" and hit.created_at > 0 and len(cache) == 1
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_many_keys_lookup_beyond_parameter_limit(tmp_path):
    with AnswerCache(tmp_path / "c.sqlite") as cache:
        for i in range(1200):
            cache.put(f"k{i}", Completion(str(i), "m"), model_id="m", template_version="v")
        found = cache.get_many([f"k{i}" for i in range(0, 2400, 2)])
    assert len(found) == 600 and found["k1198"].response == "1198"


def test_unreadable_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "c.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SlimrecError, match="cannot open the answer cache"):
        AnswerCache(bad)


BATCH = 100


def _writer(path: str, keys: list[str], tag: str, turn, seen) -> None:
    """Write ``keys`` in batches, in step with the other writer (``turn``): both finish a
    batch, both count the rows in the file, then both write the next batch."""
    counts = []
    with AnswerCache(path) as cache:
        for start in range(0, len(keys), BATCH):
            turn.wait()  # both writers' previous batches are in
            counts.append(len(cache))
            turn.wait()  # both have counted: no row arrives while either counts
            for key in keys[start : start + BATCH]:
                cache.put(key, Completion(f"{key}:{tag}", "m"), model_id="m", template_version="v")
    seen.put((tag, counts))


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    """Two processes write interleaved batches into one file through their own connections.

    Barriers make the interleaving certain, whatever the machine's load: the writers go
    batch by batch in step, so each one writes while the other's rows keep arriving
    (checked from the row counts each sees between batches), and no row may be lost. (With
    one barrier per batch a writer slowed by a loaded machine counted after the other's
    first batch was in: CI saw 100 rows where 0 were due.)
    """
    path = str(tmp_path / "shared.sqlite")
    AnswerCache(path).close()  # create the file (WAL) before the race
    ctx = mp.get_context("spawn")
    # No timeouts: a loaded machine may take minutes to start a process; a writer that
    # dies instead breaks the barrier (below), so the other cannot wait for ever.
    turn, seen = ctx.Barrier(2), ctx.Queue()
    a = [f"k{i}" for i in range(0, 2000)]  # 1500..1999 overlap with b
    b = [f"k{i}" for i in range(1500, 3500)]
    procs = [
        ctx.Process(target=_writer, args=(path, a, "a", turn, seen)),
        ctx.Process(target=_writer, args=(path, b, "b", turn, seen)),
    ]
    for p in procs:
        p.start()
    counts = {}
    while len(counts) < len(procs):
        try:
            tag, seen_counts = seen.get(timeout=1)
            counts[tag] = seen_counts
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                turn.abort()  # the survivor stops waiting for the dead one
                break
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    with AnswerCache(path) as cache:
        assert len(cache) == 3500
        found = cache.get_many(f"k{i}" for i in range(3500))
    assert set(found) == {f"k{i}" for i in range(3500)}
    assert all(found[f"k{i}"].response == f"k{i}:a" for i in range(1500))
    assert all(found[f"k{i}"].response == f"k{i}:b" for i in range(2000, 3500))
    # Overlapping keys: one of the two answers, never a torn or missing row.
    assert all(found[f"k{i}"].response in (f"k{i}:a", f"k{i}:b") for i in range(1500, 2000))
    # The writers interleaved: before its batch j each saw the other's batches too.
    for tag in "ab":
        assert len(counts[tag]) == 20 and counts[tag][0] == 0
        # Before the overlapping keys (a's batch 15 is b's batch 0), both batches count.
        assert all(counts[tag][j] == 2 * BATCH * j for j in range(1, 16))
