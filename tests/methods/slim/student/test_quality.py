"""The student quality report: ROUGE-L on known examples, and before/after on real models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slimrec.errors import ConfigError
from slimrec.methods.slim.student.quality import lcs_length, quality_report, rouge_l_f1, run_quality
from slimrec.text import TextEncoder

GOOD = "Step 1: Likes pens.\nStep 2: 1. Pens\nStep 3: Pens: Pilot G2."


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> TextEncoder:
    return TextEncoder(cache=tmp_path_factory.mktemp("emb") / "cache.sqlite")


def test_lcs_on_known_sequences():
    assert lcs_length("ABCBDAB", "BDCABA") == 4  # the textbook example (CLRS 15.4)
    assert lcs_length([], ["a"]) == 0
    assert lcs_length("abc", "abc") == 3
    assert lcs_length("abc", "xyz") == 0


def test_rouge_l_on_known_examples():
    # LCS "the cat on the mat" = 5; P = 5/5, R = 5/6, F = 2PR/(P+R) = 10/11.
    assert rouge_l_f1("the cat on the mat", "the cat sat on the mat") == pytest.approx(10 / 11)
    # Lin (2004): "police killed the gunman" vs "the gunman kill police": LCS "the gunman",
    # 2 of 4 tokens each way -> P = R = F = 0.5.
    assert rouge_l_f1("the gunman kill police", "police killed the gunman") == pytest.approx(0.5)
    assert rouge_l_f1("The  CAT\nsat", "the cat sat") == 1.0  # lower-cased, whitespace-split
    assert rouge_l_f1("", "the cat") == 0.0 and rouge_l_f1("a b", "c d") == 0.0
    # Precision and recall differ: candidate of 2 tokens inside a reference of 8.
    assert rouge_l_f1("a b", "a x b x x x x x") == pytest.approx(2 * 1 * 0.25 / 1.25)


def test_quality_report_counts_parses_and_compares_meaning(encoder):
    teacher = [GOOD, GOOD.replace("pens", "notebooks"), GOOD]
    student = [GOOD, "Step 1: Likes notebooks. Nothing else.", "a tax law textbook"]
    report = quality_report(student, teacher, encoder)
    assert report["n"] == 3
    assert report["parse_rate"] == pytest.approx(1 / 3)
    expected = np.mean([rouge_l_f1(s, t) for s, t in zip(student, teacher, strict=True)])
    assert report["rouge_l_f1"] == pytest.approx(expected)
    assert report["rouge_l_f1"] < 1.0
    same = quality_report([GOOD], [GOOD], encoder)
    assert same["cosine"] == pytest.approx(1.0, abs=1e-5) and same["rouge_l_f1"] == 1.0
    assert report["cosine"] < same["cosine"] - 0.1
    assert quality_report([GOOD], [GOOD], None)["cosine"] is None
    with pytest.raises(ValueError):
        quality_report([GOOD], [], None)


def test_report_before_and_after_distillation(memorised_run, encoder):
    rationales, out, cfg = memorised_run
    result = run_quality(rationales, out, cfg, encoder=encoder, max_new_tokens=64)
    before, after = result["before"], result["after"]
    assert before["n"] == after["n"] == 1 and len(result["users"]) == 1
    # The random base model writes noise; the student writes the teacher's three steps.
    assert before["parse_rate"] == 0.0 and after["parse_rate"] == 1.0
    assert after["rouge_l_f1"] > 0.8 > before["rouge_l_f1"]
    assert after["cosine"] > before["cosine"]
    saved = json.loads((out / "quality.json").read_text())
    assert saved["after"] == after and saved["sampling"]["temperature"] == 0.0
    table = (out / "quality.md").read_text()
    assert "| parses into 3 steps | 0.0% | 100.0% |" in table
    rows = [json.loads(x) for x in (out / "quality_answers.jsonl").read_text().splitlines()]
    assert rows[0]["after"].startswith("Step 1: The user likes pens and paper")


def test_report_needs_a_trained_adapter(rationales, tmp_path, lively_lm, encoder):
    from slimrec.methods.slim.student import StudentConfig

    with pytest.raises(ConfigError, match="no adapter/"):
        run_quality(rationales, tmp_path, StudentConfig(base_model=str(lively_lm)), encoder=encoder)
