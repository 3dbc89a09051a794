"""How close the student's rationales come to the teacher's, before and after distillation.

On held-out users (the validation users of the distillation split) the base model and
the distilled student each answer the same prompts greedily, and each answer is compared
with the teacher's:

- *parse rate*: share of answers that split into all three SLIM steps
  (:func:`slimrec.methods.slim.parse_rationale`) -- the format the recommender relies on;
- *ROUGE-L F1*: longest common subsequence of lower-cased whitespace tokens, so word
  order counts but exact phrasing need not match;
- *cosine*: of the sentence embeddings of the two answers (the same encoder that later
  embeds rationales for the recommender), i.e. whether they *mean* the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimrec.errors import ConfigError
from slimrec.io import write_json_atomic, write_text_atomic
from slimrec.methods.slim.parse import parse_rationale


def _tokens(text: str) -> list[str]:
    return text.lower().split()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (two-row dynamic programme)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l_f1(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (beta = 1) of ``candidate`` against ``reference``; 0 if either is empty."""
    cand, ref = _tokens(candidate), _tokens(reference)
    common = lcs_length(cand, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(cand), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def quality_report(
    student_answers: Sequence[str], teacher_answers: Sequence[str], encoder
) -> dict[str, Any]:
    """Parse rate, mean ROUGE-L F1 and mean embedding cosine of paired answers.

    ``encoder`` is a :class:`slimrec.text.TextEncoder` (anything with ``encode(texts)``
    returning L2-normalised rows), or None to skip the cosine.
    """
    if len(student_answers) != len(teacher_answers):
        raise ValueError("student and teacher answers must pair up")
    n = len(student_answers)
    if n == 0:
        return {"n": 0, "parse_rate": None, "rouge_l_f1": None, "cosine": None}
    parsed = [parse_rationale(a).complete for a in student_answers]
    rouge = [rouge_l_f1(s, t) for s, t in zip(student_answers, teacher_answers, strict=True)]
    report: dict[str, Any] = {
        "n": n,
        "parse_rate": float(np.mean(parsed)),
        "rouge_l_f1": float(np.mean(rouge)),
        "cosine": None,
    }
    if encoder is not None:
        s = np.asarray(encoder.encode(list(student_answers)), dtype=np.float32)
        t = np.asarray(encoder.encode(list(teacher_answers)), dtype=np.float32)
        report["cosine"] = float(np.mean(np.sum(s * t, axis=1)))
    return report


def markdown_table(before: dict[str, Any], after: dict[str, Any], encoder_name: str) -> str:
    """The before/after table of the quality report."""
    rows = [
        ("parses into 3 steps", "parse_rate", "{:.1%}"),
        ("ROUGE-L F1 to teacher", "rouge_l_f1", "{:.3f}"),
        (f"cosine to teacher ({encoder_name})", "cosine", "{:.3f}"),
    ]
    lines = [
        f"Held-out users: {after['n']}",
        "",
        "| metric | base model | distilled student |",
        "|---|---|---|",
    ]
    for label, key, fmt in rows:
        shown = [fmt.format(r[key]) if r[key] is not None else "n/a" for r in (before, after)]
        lines.append(f"| {label} | {shown[0]} | {shown[1]} |")
    return "\n".join(lines) + "\n"


def run_quality(
    rationales_path: str | Path,
    out: str | Path,
    config,
    *,
    encoder,
    max_users: int = 32,
    max_new_tokens: int = 384,
    no_repeat_ngram: int = 0,
) -> dict[str, Any]:
    """Generate with the base model and base + ``out/adapter`` on held-out users; report.

    Writes ``out/quality.json``, ``out/quality.md`` and every answer to
    ``out/quality_answers.jsonl``.
    """
    from slimrec.llm.backends.base import ChatRequest, SamplingConfig
    from slimrec.llm.local import resolve_base
    from slimrec.methods.slim.student.sft_data import load_rationales, split_users

    try:
        from slimrec.llm.backends.hf import HFBackend
    except ImportError as e:
        raise ConfigError(
            "the quality report needs the local model backend slimrec.llm.backends.hf",
            fix="run without --report",
        ) from e
    out = Path(out)
    if not (out / "adapter").is_dir():
        raise ConfigError("no adapter/ to report on", where=out, fix="run `slimrec distill` first")
    records = load_rationales(rationales_path, only_parsed=config.only_parsed)
    valid = split_users(records, config.valid_fraction, config.seed)[1][:max_users]
    requests = [ChatRequest(key=f"user {r.user}", messages=r.messages) for r in valid]
    sampling = SamplingConfig(
        max_new_tokens=max_new_tokens, temperature=0.0, no_repeat_ngram=no_repeat_ngram
    )
    folder = str(resolve_base(config.base_model))
    answers: dict[str, list[str]] = {}
    for label, adapter in (("before", None), ("after", str(out / "adapter"))):
        backend = HFBackend(
            folder,
            adapter=adapter,
            device=config.device,
            dtype=config.dtype,
            threads=config.threads,
        )
        texts = [""] * len(requests)
        for index, completion in backend.generate(requests, sampling):
            texts[index] = completion.text
        answers[label] = texts
    teacher = [r.rationale for r in valid]
    reports = {label: quality_report(texts, teacher, encoder) for label, texts in answers.items()}
    encoder_name = getattr(encoder, "model", "none") if encoder is not None else "none"
    result = {
        "users": [r.user for r in valid],
        "sampling": sampling.model_dump(),
        "encoder": encoder_name,
        **reports,
    }
    write_json_atomic(out / "quality.json", result)
    write_text_atomic(
        out / "quality.md", markdown_table(reports["before"], reports["after"], encoder_name)
    )
    rows = [
        {"user": r.user, "teacher": t, "before": b, "after": a}
        for r, t, b, a in zip(valid, teacher, answers["before"], answers["after"], strict=True)
    ]
    write_text_atomic(
        out / "quality_answers.jsonl",
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows),
    )
    return result
