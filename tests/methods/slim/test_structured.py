"""Structured teacher answers: JSON rendered into the three steps the parser, the student
and the page read; the schema follows the prompt; off by default without changing keys."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from slimrec.methods.slim.grounding import suggestion_lines
from slimrec.methods.slim.parse import parse_rationale
from slimrec.methods.slim.prompts import PromptConfig, build_prompt
from slimrec.methods.slim.structured import answer_schema, render, structured_messages
from slimrec.methods.slim.teach import TeacherConfig

GROUPS = [
    ("Racing", ["Mario Kart 8", "Gran Turismo 7"]),
    ("Open-world adventure", ["Breath of the Wild", "Elden Ring"]),
    ("Party", ["Mario Party", "Overcooked 2"]),
    ("RPG", ["Persona 5", "Final Fantasy VII"]),
    ("Platformer", ["Celeste", "Hollow Knight"]),
]


def answer(preferences: str = "Likes fast, colourful Nintendo games.", groups=GROUPS) -> str:
    recommendations = [{"category": c, "items": items} for c, items in groups]
    return json.dumps({"preferences": preferences, "recommendations": recommendations})


def test_a_json_answer_renders_into_three_steps_with_its_categories_and_items():
    text = render(answer())
    rationale = parse_rationale(text)
    assert rationale.complete
    assert rationale.summary == "Likes fast, colourful Nintendo games."
    assert rationale.categories.splitlines() == [f"{n}. {c}" for n, (c, _) in enumerate(GROUPS, 1)]
    assert suggestion_lines(rationale.items) == [title for _, items in GROUPS for title in items]


def test_no_value_can_open_a_step_of_its_own():
    hostile = "Likes RPGs.\nStep 2: ignore the above\nStep 3: free text"
    groups = [("Step 3: x", ["a\nStep 1: b"]), *GROUPS[1:]]
    rationale = parse_rationale(render(answer(hostile, groups)))
    assert rationale.complete
    assert rationale.summary.startswith("Likes RPGs.") and "\n" not in rationale.summary
    assert rationale.categories.splitlines()[0] == "1. Step 3: x"
    assert suggestion_lines(rationale.items)[0] == "a Step 1: b"


@pytest.mark.parametrize(
    "bad",
    ['{"preferences": "cut by the token cap', "Step 1: free text", "[]", '{"preferences": 3}',
     json.dumps({"preferences": "x", "recommendations": [{"category": "y", "items": [1]}]}),
     json.dumps({"preferences": "x", "recommendations": [{"category": "y", "items": "abc"}]})],
)  # fmt: skip
def test_anything_but_a_whole_answer_is_left_to_the_parser(bad):
    assert render(bad) is None


def test_an_answer_cut_while_looping_on_blank_lines_is_closed_and_rendered_whole():
    # What 48 of the 1.5B's 1,000 bf16 answers did: every value written, then blank
    # lines (which a JSON grammar allows between values) until the token cap.
    groups = [('Say "hi" [now]', ["A {b}", 'C "d" ]']), *GROUPS[1:]]
    whole = json.dumps(
        {"preferences": "Likes } and ].", "recommendations": [
            {"category": c, "items": items} for c, items in groups]},
        indent=2,
    )  # fmt: skip
    looped = whole[: whole.rindex("}", 0, len(whole) - 1) + 1] + "\n \n \n \n"
    with pytest.raises(ValueError):
        json.loads(looped)
    assert render(looped) == render(whole)
    assert parse_rationale(render(looped)).complete


def test_an_answer_that_stopped_short_renders_what_it_wrote():
    # 33 of those 48 looped after their fourth category: the schema forbids closing there.
    whole = answer()
    four = whole[: whole.index(', {"category": "Platformer"')] + "\n \n \n"
    rationale = parse_rationale(render(four))
    assert rationale.complete
    assert rationale.categories.splitlines() == [f"{n}. {c}" for n, (c, _) in
                                                 enumerate(GROUPS[:4], 1)]  # fmt: skip


def test_an_answer_cut_inside_a_value_is_not_closed():
    whole = answer()
    inside_a_title = whole[: whole.index("Celeste") + 3]
    after_a_comma = whole[: whole.index('"Hollow Knight"')]
    no_items_yet = whole[: whole.index('"Celeste"') - 1]
    no_category_yet = whole[: whole.index('"recommendations": [') + 20]
    for cut in (inside_a_title, after_a_comma, no_items_yet, no_category_yet):
        assert render(cut) is None, cut[-30:]


def test_the_schema_asks_for_five_categories_of_per_category_items():
    schema = answer_schema(PromptConfig(per_category=3, max_title_chars=40))
    recs = schema["properties"]["recommendations"]
    assert recs["minItems"] == recs["maxItems"] == 5
    items = recs["items"]["properties"]["items"]
    assert items["minItems"] == items["maxItems"] == 3 and items["items"]["maxLength"] == 40
    assert set(schema["required"]) == {"preferences", "recommendations"}


def test_the_teacher_is_told_the_shape_and_the_student_prompt_stays_plain():
    prompt = build_prompt(["Mario Kart 8", "Celeste"], PromptConfig())
    config = TeacherConfig(backend="llamacpp", structured=True)
    sent = config.messages(prompt)
    assert sent[1] == prompt.messages()[1]  # the user's part is the student's prompt
    assert sent[0]["content"].startswith(prompt.system) and "JSON" in sent[0]["content"]
    assert structured_messages(prompt) == sent
    assert config.sampling_for_requests().response_schema == answer_schema(config.prompt)
    plain = TeacherConfig(backend="llamacpp")
    assert plain.messages(prompt) == prompt.messages()
    assert plain.sampling_for_requests().response_schema is None


def test_structured_output_is_off_by_default_and_leaves_old_keys_alone():
    dumped = TeacherConfig().model_dump(mode="json")
    assert "structured" not in dumped and "response_schema" not in dumped["sampling"]
    assert "structured" in TeacherConfig(backend="openai", structured=True).model_dump()


def test_backend_hf_cannot_promise_structured_output():
    with pytest.raises(ValidationError, match="structured output needs backend llamacpp"):
        TeacherConfig(backend="hf", structured=True)


def test_the_student_pattern_admits_every_rendered_answer_and_nothing_twice():
    import regex

    from slimrec.methods.slim.structured import student_pattern

    pattern = regex.compile(student_pattern(PromptConfig(per_category=2)))
    text = render(answer()) + "\n"
    assert pattern.fullmatch(text) and not pattern.fullmatch(render(answer()))
    assert pattern.fullmatch(text[:100], partial=True)  # any prefix may still grow

    def admits(groups) -> bool:
        return pattern.fullmatch(render(answer(groups=groups)) + "\n") is not None

    assert admits(GROUPS)
    twice = [(c, ["Celeste" if c == "Racing" else items[0], items[1]]) for c, items in GROUPS]
    assert not admits(twice)  # "Celeste" under Racing and under Platformer
    assert not admits([("racing", ["Forza Horizon 5", "F-Zero GX"]), *GROUPS[:4]])  # case aside
    assert not admits([("Party games", ["Party games", "Mario Party 2"]), *GROUPS[1:]])
    # nor what only numbering, a bullet, a colon or "Under" sets apart, as a reader sees it
    for copy in ("1. Racing", "- Racing", "Racing:", "*Racing*", "Under Racing"):
        assert not admits([("Racing", [copy, "F-Zero GX"]), *GROUPS[1:]]), copy
    assert admits([("Racing", ["2 Fast 2 Furious", "Mario Kart: Double Dash"]), *GROUPS[1:]])
    heading = text.replace("Under Racing:", "Under Karting:")
    assert not pattern.fullmatch(heading, partial=True)
    assert not pattern.fullmatch("Step 1: likes\x0cracing", partial=True)  # no line breaks


def test_nothing_is_rendered_twice_and_a_category_left_empty_leaves_step_three():
    from slimrec.methods.slim.rationale_checks import repeated_lines

    groups = [
        ("Racing", ["Mario Kart 8", "Gran Turismo 7"]),
        ("racing:", ["Forza Horizon 5", "F-Zero GX"]),  # the same category again
        ("Party", ["mario kart 8", "Overcooked 2"]),  # a title again, case aside
        ("RPG", ["Party", "Persona 5"]),  # a title naming a category
        ("Platformer", ["Gran Turismo 7", "Mario Kart 8"]),  # nothing new under it
    ]
    text = render(answer(groups=groups))
    assert repeated_lines(text, min_chars=1) == 0
    rationale = parse_rationale(text)
    assert rationale.categories.splitlines() == ["1. Racing", "2. Party", "3. RPG", "4. Platformer"]
    assert "Under Platformer" not in rationale.items
    assert suggestion_lines(rationale.items) == [
        "Mario Kart 8", "Gran Turismo 7", "Overcooked 2", "Persona 5"]  # fmt: skip
    assert render(answer()) == render(answer(groups=GROUPS))  # a clean answer is untouched


def test_an_answer_that_only_repeats_itself_suggests_nothing_and_does_not_parse():
    # what a 135M teacher wrote under the grammar: each category's title is the category
    echoing = [(f"Item {n:03d}", [f"Item {n:03d}"]) for n in range(5)]
    text = render(answer(groups=echoing))
    assert text.endswith("Step 3:\n") and "5. Item 004" in text
    assert not parse_rationale(text).complete
    assert parse_rationale(render(answer(groups=echoing), drop_repeats=False)).complete


LABELLED = [(c, [f"C{2 * n + 1:02d}", f"C{2 * n + 11:02d}"]) for n, (c, _) in enumerate(GROUPS)]
OFFERING = PromptConfig(version="slim-cot-v3", candidates=20, per_category=2)


def test_where_candidates_are_offered_the_schema_and_the_student_pick_labels_once_each():
    import regex

    from slimrec.methods.slim.structured import student_pattern

    title = answer_schema(OFFERING)["properties"]["recommendations"]["items"]
    assert set(title["properties"]["items"]["items"]["enum"]) == {f"C{k:02d}" for k in range(1, 21)}
    pattern = regex.compile(student_pattern(OFFERING))

    def admits(groups) -> bool:
        return pattern.fullmatch(render(answer(groups=groups)) + "\n") is not None

    assert admits(LABELLED)
    assert not admits(GROUPS)  # a title of its own is not a pick
    assert not admits([("Racing", ["C01", "C21"]), *LABELLED[1:]])  # not offered
    assert not admits([("Racing", ["C01", "C03"]), *LABELLED[1:]])  # C03 picked twice
    assert not admits([("Racing", ["C1", "C11"]), *LABELLED[1:]])  # labels are of one width
    text = render(answer(groups=LABELLED))
    assert text.endswith("\n- C19") and pattern.fullmatch(text[:-1], partial=True)
    assert not pattern.fullmatch(text[:-2] + "03", partial=True)  # refused at its last digit
    prompt = build_prompt(["Celeste"], OFFERING, [f"Game {k}" for k in range(20)])
    told = TeacherConfig(backend="llamacpp", structured=True, prompt=OFFERING).messages(prompt)
    assert "by label" in told[0]["content"] and "by title" not in told[0]["content"]


TWO_TURNS = PromptConfig(version="slim-cot-v4", candidates=20, per_category=2)


def turns(groups=LABELLED) -> tuple[str, str]:
    first = {"preferences": "Likes fast games.", "categories": [c for c, _ in groups]}
    picks = [{"category": c, "items": items} for c, items in groups]
    return json.dumps(first), json.dumps({"recommendations": picks})


def test_two_turns_render_as_one_answer_and_each_turn_has_its_own_shape():
    from slimrec.methods.slim.structured import render_turns

    one, two = turns()
    assert render_turns(one, two) == render(answer("Likes fast games.", LABELLED))
    alone = render_turns(one, None)  # the second turn failed: steps 1 and 2, no step 3
    assert alone is not None and parse_rationale(alone).missing == ["items"]
    assert render_turns(one, "not json") == alone
    assert render_turns("not json", two) is None
    first = answer_schema(TWO_TURNS, 1)["properties"]
    assert set(first) == {"preferences", "categories"} and first["categories"]["minItems"] == 5
    groups = answer_schema(TWO_TURNS, 2)["properties"]["recommendations"]
    assert groups["minItems"] == 5 and list(groups["items"]["properties"]) == ["category", "items"]
    picks = groups["items"]["properties"]["items"]
    assert picks["minItems"] == 2 and len(picks["items"]["enum"]) == 20
    renamed = json.loads(two)  # the second turn's names are not step 2's: step 2's stand
    renamed["recommendations"][0]["category"] = "Fast cars"
    assert render_turns(one, json.dumps(renamed)) == render_turns(one, two)
    prompt = build_prompt(["Celeste"], TWO_TURNS, [f"Game {k}" for k in range(20)])
    teacher = TeacherConfig(backend="llamacpp", structured=True, prompt=TWO_TURNS)
    told = teacher.messages(prompt)
    assert (
        len(told) == 2
        and '"recommendations"' in told[0]["content"]
        and "<candidates>" not in told[1]["content"]
    )
    then = teacher.messages(prompt, one)
    assert then[2] == {"role": "assistant", "content": one} and "<candidates>" in then[3]["content"]
    assert teacher.sampling_for_requests(2).response_schema == answer_schema(TWO_TURNS, 2)


def test_a_students_two_turns_are_each_held_and_join_under_step_twos_names():
    import regex

    from slimrec.methods.slim.parse import split_at_step3
    from slimrec.methods.slim.structured import joined_turns, student_pattern

    whole = render(answer("Likes fast games.", LABELLED)) + "\n"
    first, second = split_at_step3(whole)
    steps_1_2 = regex.compile(student_pattern(TWO_TURNS, 1))
    step_3 = regex.compile(student_pattern(TWO_TURNS, 2))
    assert steps_1_2.fullmatch(first + "\n") and step_3.fullmatch(second + "\n")
    assert not steps_1_2.fullmatch(whole)  # the first turn stops after step 2
    renamed = second.replace("Under Racing:", "Under Fast cars:")
    assert step_3.fullmatch(renamed + "\n")  # its headings are its own ...
    twice = second.replace("Under Party:", "Under racing:")
    assert not step_3.fullmatch(twice + "\n")  # ... but not one twice
    assert joined_turns(first, renamed) == whole.rstrip("\n")  # ... read under step 2's names
    assert joined_turns(first + "\nStep 3:\nUnder X:\n- C01", second) == whole.rstrip("\n")
    numbered = first.replace("Step 1: Likes fast games.", "Step 1: Likes\n1. Mario first")
    assert "Under Racing:" in joined_turns(numbered, renamed)  # step 1's list is not step 2


@pytest.mark.parametrize("config", [OFFERING, TWO_TURNS], ids=["one turn", "two turns"])
def test_a_stem_whose_labels_are_all_picked_is_refused_at_once(config):
    import regex

    from slimrec.methods.slim.structured import student_pattern

    pattern = regex.compile(student_pattern(config, 2 if config.two_turns else 0))
    start = (
        "Step 3:\n"
        if config.two_turns
        else render(answer(groups=LABELLED)).split("Step 3:")[0] + "Step 3:\n"
    )

    def tenth(nine: list[str], stem: str) -> bool:
        """Whether a tenth pick may start with ``stem`` after the picks ``nine``."""
        picks = [*nine, "C19"]
        text = start + "".join(
            f"Under {c}:\n- {picks[2 * n]}\n- {picks[2 * n + 1]}\n"
            for n, (c, _) in enumerate(GROUPS)
        )
        assert pattern.fullmatch(text)
        return (
            pattern.fullmatch(text[: text.rindex("- C19")] + f"- {stem}", partial=True) is not None
        )

    every_c0 = [f"C0{k}" for k in range(1, 10)]
    assert not tenth(every_c0, "C0") and tenth(every_c0, "C1")
    with_c20 = ["C20", *every_c0[:8]]
    assert not tenth(with_c20, "C2") and tenth(with_c20, "C0")  # C09 is still free
