"""`slimrec recommend` in a terminal: untrusted titles and rationales cannot drive it."""

from __future__ import annotations

import pytest

from slimrec.serve.catalog import Item
from slimrec.serve.explainer import Explanation
from slimrec.serve.service import Recommendation, Scored
from slimrec.serve.table import plain, print_rich

# An OSC window-title sequence, a bell, a colour, a bidi override and a zero-width space.
HOSTILE = "\x1b]0;pwned\x07Zelda \x1b[31mred\x1b[0m \u202eevil\u200b"
CONTROLS = ("\x1b", "\x07", "\u202e", "\u200b")


def recommendation() -> Recommendation:
    items = [Scored(Item(1, f"id{HOSTILE}", HOSTILE), 0.5), Scored(Item(2, "i2", "Mario"), 0.25)]
    why = Explanation(HOSTILE, (HOSTILE, "Action", f"- {HOSTILE}"), "run:student", True)
    return Recommendation(history=[], items=items, explanation=why, user="u1")


def test_plain_text_shows_control_characters_as_spaces():
    text = plain(recommendation())
    assert not any(c in text for c in CONTROLS)
    assert "Zelda" in text and "red" in text and "evil" in text and "Mario" in text


def test_the_rich_tables_show_control_characters_as_spaces(capsys):
    pytest.importorskip("rich")
    print_rich(recommendation())
    out = capsys.readouterr().out
    assert "Zelda" in out and "Mario" in out
    assert not any(c in out for c in ("\x1b]", "\x1b[31m", "\x07", "\u202e", "\u200b"))
