"""Parsing rationales into three steps, whatever the formatting."""

from __future__ import annotations

import pytest

from slimrec.methods.slim.parse import parse_rationale

PLAIN = """Step 1: Likes fountain pens and notebooks.
Step 2: Pens, Notebooks, Ink, Desk organisers, Lamps
Step 3:
1. Pens: Lamy Safari, Pilot Metropolitan
2. Notebooks: Moleskine, Leuchtturm
3. Ink: Diamine"""

VARIANTS = {
    "markdown": """## **Step 1 - Summary**
Likes fountain pens.

**Step 2:** Pens, Ink

### Step 3.
1. Pens: Lamy
2. Ink: Diamine""",
    "bare numbers": """1. Likes fountain pens.
2. Pens, Ink
   1. Pens
   2. Ink
3. 1) Lamy Safari 2) Diamine""",
    "parenthesised": """(1) Likes fountain pens.
(2) Pens, Ink
(3) Lamy Safari, Diamine""",
    "lower case, CRLF": "step 1) Likes fountain pens.\r\nstep 2) Pens, Ink\r\nstep 3) Lamy Safari",
}


def test_plain_answer_keeps_numbered_products_inside_step_3():
    r = parse_rationale(PLAIN)
    assert r.complete
    assert r.summary == "Likes fountain pens and notebooks."
    assert r.categories.startswith("Pens, Notebooks")
    assert r.items.splitlines() == [
        "1. Pens: Lamy Safari, Pilot Metropolitan",
        "2. Notebooks: Moleskine, Leuchtturm",
        "3. Ink: Diamine",
    ]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_numbering_variants(name):
    r = parse_rationale(VARIANTS[name])
    assert r.complete, (name, r)
    assert "fountain pens" in r.summary
    assert "Pens" in r.categories and "Ink" in r.categories
    assert "Lamy" in r.items
    assert "Lamy" not in r.summary + r.categories


def test_missing_steps_are_reported():
    r = parse_rationale("Step 1: Likes pens.\nStep 3: Lamy Safari")
    assert r.missing == ["categories"] and r.items == "Lamy Safari"
    r = parse_rationale("I cannot help with that.")
    assert r.missing == ["summary", "categories", "items"] and not r.complete
    assert parse_rationale("Step 1:\nStep 2: Pens\nStep 3: Lamy").missing == ["summary"]
