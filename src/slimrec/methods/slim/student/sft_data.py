"""The teacher's rationales as supervised fine-tuning sequences for the student.

Each row of ``rationales.parquet`` (written by ``slimrec teach``) becomes one sequence:
the prompt rendered by the student's own chat template with the assistant header
(``add_generation_prompt=True``), then the teacher's rationale and the token that ends an
assistant turn (``<|im_end|>`` in ChatML templates; the EOS token otherwise). Labels are
``-100`` on the prompt and on padding, so the loss is ``-log P(rationale | prompt)`` and
the student learns to *answer*, not to echo prompts.

A prompt asked in two turns (template ``slim-cot-v4``: steps 1 and 2 from the history,
then the candidates and step 3) becomes one two-turn conversation, the answer's steps 1
and 2 as the first assistant turn: both answers carry the loss, the prompts do not.

Sequences longer than ``max_length`` lose prompt tokens first: the first quarter of the
kept prompt is its head (system message and opening), the rest its tail (the most recent
history, the instructions and the assistant header), so the oldest history items in the
middle go -- the same choice the prompt builder makes when a history is too long. Only
when the rationale alone would leave the prompt less than a quarter of ``max_length`` is
the rationale cut, at its end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from slimrec.errors import DataError
from slimrec.llm.chat import chat_prompt_ids
from slimrec.methods.slim.candidate_labels import labelled, offered
from slimrec.methods.slim.parse import parse_rationale, split_at_step3
from slimrec.methods.slim.rationale_file import read_rationale_file

IGNORE = -100  # label of tokens that carry no loss (torch's cross-entropy default)
REQUIRED_COLUMNS = ("user", "prompt", "response")


@dataclass(frozen=True)
class RationaleRecord:
    """One teacher answer: the user, the chat messages it answered, and the answer."""

    user: str
    messages: list[dict[str, str]]
    rationale: str


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]

    @property
    def n_supervised(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def load_rationales(path: str | Path, *, only_parsed: bool = True) -> list[RationaleRecord]:
    """The usable rows of a rationales file, with one-line errors for bad input."""
    frame = read_rationale_file(path, REQUIRED_COLUMNS)
    records = []
    for row, (user, prompt, response) in enumerate(
        zip(frame["user"], frame["prompt"], frame["response"], strict=True)
    ):
        if not isinstance(response, str) or not response.strip():
            continue
        if only_parsed:
            parsed = frame["parsed"].iloc[row] if "parsed" in frame.columns else None
            if parsed is None or parsed != parsed:  # absent or NaN: parse it ourselves
                parsed = parse_rationale(response).complete
            if not bool(parsed):
                continue
        messages = _messages(prompt, path, row)
        # where the prompt offered candidates, the student learns to pick them by label
        learnt = labelled(response.strip(), offered(messages[-1]["content"]))
        if len(messages) > 2 and messages[-2]["role"] == messages[-1]["role"] == "user":
            # asked in two turns: steps 1 and 2 answer the first, step 3 the follow-up
            first, learnt = split_at_step3(learnt)
            if not learnt:
                continue
            messages = [*messages[:-1], {"role": "assistant", "content": first}, messages[-1]]
        records.append(RationaleRecord(str(user), messages, learnt))
    if not records:
        what = "parsed into three steps" if only_parsed else "is non-empty"
        raise DataError(
            f"no teacher rationale {what}",
            where=path,
            fix="check the teacher's answers, or set only_parsed: false",
        )
    if len({r.user for r in records}) < 2:
        raise DataError(
            "rationales of fewer than 2 users: nothing to hold out for validation",
            where=path,
            fix="teach more users (slimrec teach --users N)",
        )
    return records


def _messages(prompt: object, path: Path, row: int) -> list[dict[str, str]]:
    try:
        messages = json.loads(prompt) if isinstance(prompt, str) else None
    except json.JSONDecodeError:
        messages = None
    ok = isinstance(messages, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    )
    if not ok or not messages:
        raise DataError(
            f"row {row}: prompt is not a JSON list of {{role, content}} messages",
            where=path,
            fix="write the prompt column with `slimrec teach`",
        )
    return messages


def split_users(
    records: list[RationaleRecord], valid_fraction: float, seed: int
) -> tuple[list[RationaleRecord], list[RationaleRecord]]:
    """Seeded split by user, at least one user on each side: (train, valid)."""
    users = sorted({r.user for r in records})
    rng = np.random.default_rng(seed)
    shuffled = [users[i] for i in rng.permutation(len(users))]
    n_valid = min(max(1, round(len(users) * valid_fraction)), len(users) - 1)
    valid = set(shuffled[:n_valid])
    return [r for r in records if r.user not in valid], [r for r in records if r.user in valid]


_PROBE = "slimrec-probe-answer"


def text_ids(tokenizer, text: str) -> list[int]:
    """Token ids of untrusted text (a teacher's answer) as plain text: a ``<|im_end|>`` in
    it is spelled out in ordinary tokens, never the special token, so an endpoint cannot
    forge a chat turn in the student's training labels."""
    special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    ids = list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
    if special & set(ids):  # a tokenizer that ignores split_special_tokens: refuse, loudly
        raise DataError("the tokenizer turned text into special tokens", fix="update transformers")
    return ids


def end_token_id(tokenizer) -> int:
    """The token that closes an assistant turn in the chat template, else the EOS token.

    The student must learn to stop the way its template ends a turn (``<|im_end|>`` for
    ChatML), which GGUF-converted tokenizers do not always name as their EOS.
    """
    end = tokenizer.eos_token_id
    turn = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _PROBE}]
    try:
        text = tokenizer.apply_chat_template(turn, tokenize=False)
    except Exception:  # templates may reject this shape; EOS is then the best guess
        text = ""
    after = text.split(_PROBE, 1)[1] if _PROBE in text else ""
    ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after.strip() else []
    if ids and ids[0] in set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder):
        end = ids[0]
    return end


def encode(
    tokenizer,
    messages: list[dict[str, str]],
    rationale: str,
    max_length: int,
    end_id: int | None = None,
) -> Encoded:
    """Token ids and labels of one (prompt, rationale) pair, truncated as the module says.

    ``end_id`` closes the rationale (default: :func:`end_token_id`, worth computing once).
    Messages with an assistant turn (a template asked in two turns) are encoded by
    :func:`encode_turns`.
    """
    end_id = end_token_id(tokenizer) if end_id is None else end_id
    if any(m["role"] == "assistant" for m in messages):
        return encode_turns(tokenizer, messages, rationale, max_length, end_id)
    prompt = chat_prompt_ids(tokenizer, messages)  # as the student sees it at inference
    answer = text_ids(tokenizer, rationale)
    answer.append(end_id)
    if len(prompt) + len(answer) > max_length:
        floor = min(len(prompt), max_length // 4)
        answer = answer[: max_length - floor]
        keep = max_length - len(answer)
        head = keep // 4
        prompt = prompt[:head] + prompt[len(prompt) - (keep - head) :]
    return Encoded(prompt + answer, [IGNORE] * len(prompt) + answer)


def encode_turns(
    tokenizer, messages: list[dict[str, str]], rationale: str, max_length: int, end_id: int
) -> Encoded:
    """A two-turn conversation (system, user, assistant, user) and its last answer, with
    labels on both answers: the conversation tokenised as the student sees it when asked
    the second turn, the first answer found where the first turn's prompt ends. Too long,
    it loses tokens from the first prompt's middle (the oldest history), as :func:`encode`."""
    turn = next(i for i, m in enumerate(messages) if m["role"] == "assistant")
    first_prompt = chat_prompt_ids(tokenizer, messages[:turn])
    whole = chat_prompt_ids(tokenizer, messages)
    start = len(first_prompt)
    if whole[:start] != first_prompt or end_id not in whole[start:]:
        raise DataError(
            "the chat template does not keep the first turn as the start of the second",
            fix="use a one-turn prompt template (prompt.version slim-cot-v3)",
        )
    stop = whole.index(end_id, start) + 1  # the first answer, its end token included
    answer = [*text_ids(tokenizer, rationale), end_id]
    ids = whole + answer
    labels = [IGNORE] * start + whole[start:stop] + [IGNORE] * (len(whole) - stop) + answer
    cut = len(ids) - max_length
    if cut > 0:
        head = start // 4
        if head + cut > start:
            raise DataError(
                f"a two-turn example needs {len(ids)} tokens, more than max_length "
                f"{max_length} leaves for its answers",
                fix="raise student max_length or shorten the prompt",
            )
        ids, labels = ids[:head] + ids[head + cut :], labels[:head] + labels[head + cut :]
    return Encoded(ids, labels)


def bucket_batches(
    lengths: list[int], batch_size: int, seed: int, epoch: int, window: int = 50
) -> list[list[int]]:
    """Batches of similar lengths in an order that depends only on (seed, epoch).

    Shuffle, sort by length within windows of ``window`` batches (little padding), cut
    into batches, shuffle the batches: a resumed run sees exactly the same batches.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    batches: list[list[int]] = []
    span = batch_size * window
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span].tolist(), key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(examples: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` tensors."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
