"""Rationale checks that need no model: loops, echoes of the instructions, five categories."""

from __future__ import annotations

from slimrec.methods.slim.prompts import PromptConfig, build_prompt
from slimrec.methods.slim.rationale_checks import (
    echoes,
    five_distinct,
    instructions_of,
    looping_lines,
    repeated_lines,
    table_rates,
)


def test_repeated_lines_counts_loops_not_numbering_or_headers():
    looping = (
        "Step 1: Briefly summarise this user's preferences:\n"
        "1. Fast Dry Correction Fluid\n2. Pendaflex File Folders\n"
        "Step 2: Recommend five categories:\n"
        "1. Fast Dry Correction Fluid\n2. **Pendaflex File Folders**\n3. fast dry correction fluid"
    )
    assert repeated_lines(looping) == 3
    assert repeated_lines("Step 1: a\nStep 2: b\n1. Pens\n2. Pens") == 0  # too short to count
    assert repeated_lines("Step 1: likes pens and paper\nStep 2: likes pens and paper") == 0


def test_a_line_saying_one_phrase_on_and_on_loops_and_two_titles_of_a_franchise_do_not():
    # what the quickstart's student, held to "no line twice", wrote instead
    held = "Step 1: The Dark Knight, The Dark Knight, The Dark Knight, The Dark\nStep 2:\n1. Drama"
    assert looping_lines(held) == 1 and repeated_lines(held) == 0
    assert looping_lines("- The Dark, The Dark, The Dark, The Dark\n- The Dark") == 1
    franchise = "Step 1: Loves The Legend of Zelda: Ocarina of Time and The Legend of Zelda."
    assert looping_lines(franchise) == 0
    assert looping_lines("- Tora! Tora! Tora!\n- New York, New York\n- The, The, The") == 1
    assert looping_lines("- The Dark Knight, The Dark Knight Rises, The Matrix") == 0
    assert looping_lines("- Zelda: Majora's Mask: Zelda: Majora's Mask") == 1  # two parts again
    assert looping_lines("Under Action:\n- Doom\nUnder Action:\n- Doom") == 0  # lines, not loops


def test_an_answer_that_restates_the_instructions_echoes_them():
    prompt = build_prompt(["Star Wars", "Alien"], PromptConfig(domain="movies", verb="watched"))
    instructions = instructions_of(prompt.user)
    assert "Star Wars" not in instructions and "Step 1" in instructions
    echo = "Step 1: Briefly summarise this user's preferences.\nThe user likes science fiction."
    assert echoes(echo, instructions)
    assert not echoes("Step 1: The user likes science fiction, Star Wars and Alien.", instructions)
    assert not echoes("Star Wars, Alien", instructions)  # history words are not instructions


def test_naming_an_offered_candidate_is_not_an_echo_of_the_instructions():
    offering = PromptConfig(version="slim-cot-v3", candidates=10, per_category=2)
    offer = [f"The Long Dark Tea Time of the Soul {k}" for k in range(10)]
    instructions = instructions_of(build_prompt(["Alien"], offering, offer).user)
    assert "Tea Time" not in instructions and "by its label alone" in instructions
    assert not echoes("- The Long Dark Tea Time of the Soul 3", instructions)


def test_an_answer_asked_in_two_turns_echoes_the_instructions_of_either():
    import json

    from slimrec.methods.slim.rationale_checks import echoes_prompt

    two = PromptConfig(version="slim-cot-v4", candidates=10, per_category=2)
    asked = json.loads(build_prompt(["Alien"], two, [f"Film {k}" for k in range(10)]).stored())
    step_3 = "Step 3: Under each of your five categories or brands, pick 2 of the candidates"
    assert echoes_prompt(step_3, asked)  # the follow-up's instructions
    assert echoes_prompt("Step 1: Briefly summarise this user's tastes in your own words.", asked)
    assert not echoes_prompt(
        "Step 1: Likes science fiction.\nStep 3:\nUnder Sci-Fi:\n- Film 3", asked
    )


def test_five_distinct_categories_counts_the_list_not_its_introduction():
    listed = "Based on this, five genres fit:\n1. Action\n2. Drama\n3. Sci-Fi\n4. Comedy\n5. Horror"
    assert five_distinct(listed)
    assert not five_distinct("1. Drama\n2. Drama\n3. Drama\n4. Drama\n5. Drama")
    assert not five_distinct("1. Action\n2. Drama\n3. Sci-Fi")
    assert five_distinct("Action\nDrama\nSci-Fi\nComedy\nHorror")  # no list marks at all


def test_table_rates_are_shares_of_the_answers_of_a_rationales_table():
    import json

    import pandas as pd

    prompt = build_prompt(["Star Wars"], PromptConfig(domain="movies", verb="watched"))
    messages = json.dumps(prompt.messages())
    good = "Step 1: Likes space operas.\nStep 2:\n1. A\n2. B\n3. C\n4. D\n5. E\nStep 3: Alien"
    looping = "Step 1: Briefly summarise this user's preferences.\nThe Empire Strikes Back\n" * 2
    table = pd.DataFrame({
        "response": [good, looping], "prompt": [messages, messages], "parsed": [True, False],
        "step2": ["1. A\n2. B\n3. C\n4. D\n5. E", None], "completion_tokens": [40, 64],
    })  # fmt: skip
    rates = table_rates(table, cap=64)
    assert rates == {
        "parse_rate": 0.5, "cap_rate": 0.5, "repeat_rate": 0.5, "echo_rate": 0.5,
        "distinct_rate": 0.5, "loop_rate": 0.0, "mean_tokens": 52.0,
    }  # fmt: skip
    assert table_rates(table, cap=None)["cap_rate"] == 0.0
