"""report.md from a hand-made result table; the long-tail numbers and plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slimrec.eval.bootstrap import Interval
from slimrec.eval.groups import history_groups
from slimrec.eval.results import ResultTable
from slimrec.pipeline.artifacts import Fit
from slimrec.pipeline.per_user import Comparison, PerUserMetrics
from slimrec.pipeline.plots import group_shares, plot_popularity, popularity_groups
from slimrec.pipeline.report import (
    MAIN_PAIRS,
    comparison_table,
    popularity_table,
    render_report,
    stage_costs,
)
from slimrec.pipeline.stage import StageRecord
from slimrec.training.trainer import PER_USER

METRICS = ("ndcg@10", "hit@10", "hit@20")


def table() -> ResultTable:
    t = ResultTable()
    values = {"backbone": 0.10, "backbone+": 0.12, "slim-": 0.125, "slim": 0.15}
    values |= {"slim-step1": 0.13, "slim-step2": 0.11, "slim-step3": 0.14}
    for seed, noise in enumerate((0.0, 0.01, 0.02)):
        for backbone in ("sasrec", "gru4rec"):
            for method, v in values.items():
                for protocol, scale in (("full", 1.0), ("sampled", 3.0)):
                    metrics = {m: scale * (v + noise) * (1 + i) for i, m in enumerate(METRICS)}
                    t.add(
                        method=f"{backbone}/{method}",
                        seed=seed,
                        metrics=metrics,
                        protocol=protocol,
                        dataset="d",
                    )
        t.add(method="text-matching", seed=seed, metrics=dict.fromkeys(METRICS, 0.05), dataset="d")
    return t


def report(**changes) -> str:
    """render_report of :func:`table` with everything else at a small run's values."""
    settings = dict(
        name="demo",
        dataset="d",
        dataset_stats={"users": 10, "items": 20, "interactions": 99},
        config_hash="abc123",
        table=table(),
        backbones=["sasrec", "gru4rec"],
        protocols=["full", "sampled"],
        metrics=METRICS,
        digits=4,
        seeds=[0, 1, 2],
        records=[],
        popularity=None,
        plot_file=None,
        top_k=10,
        hw={"cpu": "Test CPU", "cores": 2},
    )
    return render_report(**(settings | changes))


def record(name: str, seconds: float, cost: dict) -> StageRecord:
    return StageRecord(name, "k", f"stages/{name}", "ran", seconds, seconds, cost)


def test_main_table_layout_and_improvement():
    md = comparison_table(
        table(),
        ["sasrec", "gru4rec"],
        {"backbone": "Backbone", "backbone+": "Backbone+", "slim-": "SLIM-", "slim": "SLIM"},
        protocol="full",
        metrics=METRICS,
        digits=4,
        improvements=[("slim", "backbone+")],
    )
    lines = md.splitlines()
    assert lines[0] == (
        "| model | metric | Backbone | Backbone+ | SLIM- | SLIM | Improv. (SLIM vs Backbone+) |"
    )
    assert len(lines) == 2 + 2 * 3  # header, rule, backbone x metric
    row = lines[2].split(" | ")
    assert row[0] == "| sasrec" and row[1] == "ndcg@10"
    # mean over seeds 0.15, 0.16, 0.17 -> 0.16 ± 0.01; the best of the row in bold
    assert row[5] == "**0.1600 ± 0.0100**"
    assert row[2] == "0.1100 ± 0.0100"
    assert row[6] == f"{100 * (0.16 - 0.13) / 0.13:+.2f}% |"


def test_the_main_table_shows_what_item_text_gives_beside_slims_gain():
    def main_table(results: ResultTable) -> list[str]:
        md = comparison_table(
            results,
            ["sasrec"],
            {"backbone": "Backbone", "backbone+": "Backbone+", "slim-": "SLIM-", "slim": "SLIM"},
            protocol="full",
            metrics=METRICS,
            digits=4,
            improvements=MAIN_PAIRS,
        )
        assert md is not None
        return md.splitlines()

    header = main_table(table())[0]
    assert header.endswith("| Improv. (SLIM vs Backbone+) | Improv. (Backbone+ vs Backbone) |")
    backbones_only = ResultTable()
    for method, value in (("sasrec/backbone", 0.10), ("sasrec/backbone+", 0.12)):
        backbones_only.add(
            method=method, seed=0, metrics=dict.fromkeys(METRICS, value), dataset="d"
        )
    lines = main_table(backbones_only)
    assert lines[0] == (
        "| model | metric | Backbone | Backbone+ | Improv. (Backbone+ vs Backbone) |"
    )
    assert lines[2].endswith("| +20.00% |")


def test_missing_columns_are_left_out_and_no_runs_gives_none():
    t = ResultTable()
    t.add(method="sasrec/backbone", seed=0, metrics=dict.fromkeys(METRICS, 0.1), dataset="d")
    md = comparison_table(
        t,
        ["sasrec"],
        {"backbone": "Backbone", "slim": "SLIM"},
        protocol="full",
        metrics=METRICS,
        digits=3,
        improvements=[("slim", "backbone+")],
    )
    assert md.splitlines()[0] == "| model | metric | Backbone |"  # no SLIM, no Improv.
    assert "0.100" in md and "**" not in md
    assert (
        comparison_table(
            t, ["sasrec"], {"slim": "SLIM"}, protocol="full", metrics=METRICS, digits=3
        )
        is None
    )


def test_whole_report_has_every_section():
    records = [
        record("prepare", 1.0, {}),
        record(
            "teach",
            100.0,
            {
                "teacher_prompt_tokens": 1000,
                "teacher_completion_tokens": 500,
                "teacher_cost_usd": 0.0125,
            },
        ),
        record("reason", 50.0, {"student_tokens": 12345}),
        record("fit/sasrec/slim/seed0", 2.0, {}),
        record("fit/sasrec/slim/seed1", 3.0, {}),
    ]
    costs = {row["stage"]: row for row in stage_costs(records)}
    assert costs["fit"]["runs"] == 2 and costs["fit"]["seconds"] == 5.0
    shares = {"sasrec": {"slim": [0.5, 0.3, 0.2], "test targets": [0.4, 0.3, 0.3]}}
    md = report(
        records=records,
        popularity=shares,
        plot_file="popularity.png",
        hw={"cpu": "Test CPU", "cores": 2, "python": "3.11", "torch": "2"},
        date="today",
    )
    for needle in (
        "## Results: full ranking",
        "## Results: sampled",
        "ID-agnostic",
        "| SLIM-Step1 | SLIM-Step2 | SLIM-Step3 | SLIM |",
        "![recommendations by item popularity](popularity.png)",
        "| sasrec | slim | 50.0% | 30.0% | 20.0% |",
        "| teach | 1 | 100.0 | 1,000 + 500 | 0.0125 |  |",
        "| reason | 1 | 50.0 |  |  | 12,345 |",
        "Test CPU, 2 cores",
        "`abc123`",
        "date: today",
    ):
        assert needle in md, needle
    assert md.count("Improv. (SLIM vs Backbone+)") == 2  # once per protocol


def test_the_long_tail_table_lists_what_every_panel_shares_once():
    targets, matching = [0.4, 0.3, 0.3], [0.6, 0.3, 0.1]
    shares = {
        backbone: {"slim": slim, "text-matching": matching, "test targets": targets}
        for backbone, slim in (("sasrec", [0.5, 0.3, 0.2]), ("gru4rec", [0.7, 0.2, 0.1]))
    }
    table = popularity_table(shares, top_k=10)
    assert "| sasrec | slim | 50.0% | 30.0% | 20.0% |" in table
    assert "| gru4rec | slim | 70.0% | 20.0% | 10.0% |" in table
    assert table.count("text-matching") == 1 and "| all | text-matching | 60.0%" in table
    assert table.count("test targets") == 1 and "| all | test targets | 40.0%" in table


def test_the_report_names_the_machines_its_stages_ran_on_and_the_fits_without_weights():
    """A long run's stages come from sessions on different machines (bench/runs/)."""
    xeon, epyc = "Intel Xeon, 2 cores; avx2 amx_bf16", "AMD EPYC, 2 cores; avx2"
    records = [
        record("prepare", 1.0, {}),
        StageRecord("fit/sasrec/slim/seed0", "k", "f0", "ran", 2.0, 2.0, machine=xeon),
        StageRecord("fit/sasrec/slim/seed1", "k", "f1", "ran", 2.0, 2.0, machine=xeon),
        StageRecord("fit/sasrec/slim/seed2", "k", "f2", "ran", 2.0, 2.0, machine=epyc),
    ]
    md = report(
        backbones=["sasrec"],
        protocols=["full"],
        records=records,
        without_weights=["sasrec/slim", "sasrec/backbone"],
        hw={"cpu": "AMD EPYC", "cores": 2, "flags": ["fma", "avx2"]},
    )
    assert "- this report: AMD EPYC, 2 cores; lscpu flags fma avx2" in md
    assert (
        f"- stages computed on: not recorded (computed before stages kept it): 1 stage; "
        f"{xeon}: 2 stages; {epyc}: 1 stage"
    ) in md
    assert "## Long tail" in md and "![" not in md
    assert "their weights did not): sasrec/slim, sasrec/backbone." in md


def test_popularity_groups_split_items_head_to_tail():
    popularity = np.array([0, 50, 1, 7, 7, 30, 0, 2, 9, 4, 3])  # index 0 is padding
    groups = popularity_groups(popularity, 5)
    assert groups[0] == -1
    assert np.bincount(groups[1:]).tolist() == [2, 2, 2, 2, 2]
    assert groups[1] == groups[5] == 0  # the two most popular
    assert groups[6] == 4 and groups[2] == 4  # the least popular are the tail
    recs = np.array([[1, 5, 0], [6, 2, 1]])  # padding ignored
    assert group_shares(recs, groups, 5).tolist() == [0.6, 0.0, 0.0, 0.0, 0.4]
    with pytest.raises(ValueError, match="cannot fill"):
        popularity_groups(np.array([0, 1, 2]), 5)


def test_plot_is_a_png(tmp_path):
    shares = {
        "sasrec": {"backbone": np.array([0.6, 0.3, 0.1]), "slim": np.array([0.4, 0.3, 0.3])},
        "gru4rec": {"backbone": np.array([0.7, 0.2, 0.1]), "slim": np.array([0.5, 0.3, 0.2])},
    }
    path = plot_popularity(shares, tmp_path / "p.png", top_k=10, title="t")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]  # no temporary left


def test_small_runs_carry_a_caveat_and_big_ones_do_not():
    from slimrec.pipeline.report import caveat

    assert "150 test users and 1 seed " in caveat(150, 1)
    assert "3 seeds" in caveat(999, 3) and "small run" in caveat(999, 3)
    assert "not training randomness" in caveat(5000, 1) and "small run" not in caveat(5000, 1)
    assert caveat(1000, 3) is None
    named = caveat(50_000, 1, {"gru4rec/slim": 1, "sasrec/backbone+": 2})
    assert "fewer than 3 seeds for gru4rec/slim (1 seed), sasrec/backbone+ (2 seeds)" in named


def with_runs(t: ResultTable, values: dict[str, float]) -> ResultTable:
    """``t`` plus three seeds of each run label in ``values``, every metric at its value."""
    for seed in range(3):
        for label, v in values.items():
            t.add(method=label, seed=seed, metrics=dict.fromkeys(METRICS, v), dataset="d")
    return t


def compared(estimate: float, low: float, high: float, seeds=(0, 1, 2)) -> Comparison:
    """A comparison over ``seeds`` with the given interval (the means do not matter here)."""
    return Comparison(0.0, 0.0, Interval(estimate, low, high, 0.95, 150), tuple(seeds), 150)


def test_text_controls_table_shows_each_comparison_with_its_interval():
    from slimrec.pipeline.report import CONTROL_COLUMNS, CONTROL_PAIRS

    t = with_runs(table(), {"sasrec/slim-zero-text": 0.14, "sasrec/slim-shuffled-text": 0.145})
    asked = []

    def compare(a, b, key, users):
        asked.append((a, b, key))
        return compared(5.0, -1.0, 11.0) if b.endswith("zero-text") else None

    md = comparison_table(
        t,
        ["sasrec"],
        CONTROL_COLUMNS,
        protocol="full",
        metrics=METRICS[:1],
        digits=4,
        improvements=CONTROL_PAIRS,
        compare=compare,
    )
    header, _, row = md.splitlines()
    assert header.endswith(
        "| Improv. (SLIM vs zero text) | Improv. (SLIM vs shuffled text) "
        "| Improv. (SLIM vs Backbone+) |"
    )
    cells = row.split(" | ")
    assert cells[-3] == "+5.00% [-1.0, +11.0]"  # the interval where there is one
    assert cells[-2] == f"{100 * (0.16 - 0.145) / 0.145:+.2f}%"  # else the ratio of means
    assert ("sasrec/slim", "sasrec/slim-shuffled-text", "full/ndcg@10") in asked


@pytest.mark.parametrize("fusion", ["concat", "gate"])
def test_each_fusion_is_compared_with_its_own_shuffled_text(fusion):
    from slimrec.pipeline.report import CONTROL_COLUMNS, CONTROL_PAIRS

    fused, control = f"slim-{fusion}", f"slim-{fusion}-shuffled-text"
    title, control_title = CONTROL_COLUMNS[fused], CONTROL_COLUMNS[control]
    t = with_runs(table(), {f"sasrec/{fused}": 0.15, f"sasrec/{control}": 0.12})
    md = comparison_table(
        t, ["sasrec"], CONTROL_COLUMNS, protocol="full", metrics=METRICS[:1], digits=4,
        improvements=CONTROL_PAIRS,
    )  # fmt: skip
    header, _, row = md.splitlines()
    assert f"| {control_title} |" in header
    pairs = f"| Improv. ({title} vs {control_title}) | Improv. ({title} vs Backbone+) |"
    assert header.endswith(pairs)
    assert row.split(" | ")[-2] == "+25.00%"


def test_text_matching_is_compared_with_its_shuffled_text_in_a_row_without_ids():
    t = with_runs(table(), {"text-matching-shuffled-text": 0.04})
    asked = []

    def compare(a, b, key, users):
        asked.append((a, b, key))
        return compared(25.0, 10.0, 40.0)

    md = report(
        dataset_stats={"users": 10}, table=t, backbones=["sasrec"], protocols=["full"],
        metrics=METRICS[:1], hw={}, date="today", compare=compare,
    )  # fmt: skip
    section = md.split("## ID-agnostic SLIM (text matching, no item IDs)", 1)[1]
    assert "| text matching | shuffled text | Improv. (text matching vs shuffled text) |" in section
    row = "| no IDs | ndcg@10 | **0.0500 ± 0.0000** | 0.0400 ± 0.0000 | +25.00% [+10.0, +40.0] |"
    assert row in section
    assert ("text-matching", "text-matching-shuffled-text", "full/ndcg@10") in asked


def test_methods_outside_slims_tables_are_compared_with_the_plain_backbone():
    t = table()
    for seed in range(3):
        t.add(method="sasrec/llm-srec", seed=seed, metrics=dict.fromkeys(METRICS, 0.2), dataset="d")
    md = report(
        dataset_stats={"users": 10},
        table=t,
        protocols=["full"],
        hw={},
        date="today",
        diagnostics=["## Order sensitivity: shuffle\n"],
    )
    assert "## Other methods against the plain backbone" in md
    assert "| Backbone | llm-srec | Improv. (llm-srec vs Backbone) |" in md
    assert "## Order sensitivity: shuffle" in md


def test_rationale_table_shows_grounding_when_measured():
    from slimrec.pipeline.report import rationale_quality_table

    row = {"source": "teacher (m)", "answers": 10, "parse_rate": 0.5, "cap_rate": 0.1}
    row |= {"repeat_rate": 0.0, "echo_rate": 0.25, "distinct_rate": 0.9, "mean_tokens": 100.0}
    plain = rationale_quality_table([row])
    assert "in the catalog" not in plain
    assert "| 0.0% | -- | 25.0% | 90.0% | 100 |" in plain  # repeats, loops (not measured), ...
    assert "| 0.0% | 12.5% | 25.0% |" in rationale_quality_table([row | {"loop_rate": 0.125}])
    grounded = rationale_quality_table(
        [row | {"suggestions": 20, "grounded": 0.75, "new": 0.1, "hit": 0.2, "popular_hit": 0.3}]
    )
    assert "| 20 | 75.0% | 10.0% | 20.0% | 30.0% |" in grounded  # hits beside popularity's
    assert "as many popular items" in grounded and "median rank" not in grounded
    # a row measured before the control existed shows none rather than a made-up figure
    older = rationale_quality_table([row | {"suggestions": 20, "grounded": 0.75, "hit": 0.2}])
    assert older.splitlines()[2].endswith("| 20.0% | -- |")
    assert "pool's best" not in grounded
    offered = row | {"suggestions": 20, "grounded": 1.0, "new": 1.0, "hit": 0.2}
    offered |= {"popular_hit": 0.1, "pool_hit": 0.4, "in_listed_order": 1.0}
    pooled = rationale_quality_table([offered, row | {"suggestions": 5, "grounded": 0.5}])
    assert "| 20.0% | 10.0% | 40.0% | 100.0% |" in pooled  # beside the pool's own best
    assert pooled.splitlines()[3].endswith("| -- | -- |")  # a source offered none


def test_rationale_table_shows_the_probe_against_the_titles_when_measured():
    import dataclasses

    from slimrec.methods.slim.probe import Probe
    from slimrec.pipeline.report import rationale_quality_table

    row = {"source": "student (m)", "answers": 10, "parse_rate": 1.0, "cap_rate": 0.0}
    row |= {"repeat_rate": 0.0, "mean_tokens": 80.0, "suggestions": 5, "grounded": 0.4}
    probed = {"probe": dataclasses.asdict(Probe(10, 0.323, 0.14, 18.3, 10.5, 24.6))}
    md = rationale_quality_table([row | probed, row | {"source": "teacher (m)"}])
    assert "| next item's median rank: rationale | titles it read | gap |" in md
    assert "| 32.3% | 14.0% | +18.3 pts [+10.5, +24.6] |" in md
    assert md.splitlines()[3].endswith("| | | |")  # the teacher was not probed


def test_the_random_reference_of_the_sampled_lists_matches_the_closed_form():
    from slimrec.pipeline.report import random_reference

    line = random_reference(20, ["hit@1", "hit@5", "ndcg@5", "precision"])
    assert "hit@1 0.0500" in line and "hit@5 0.2500" in line and "ndcg@5 0.1474" in line
    assert "precision" not in line and random_reference(20, ["auc"]) == ""


def per_user_fit(folder: Path, label: str, seed: int, ndcg: list[float]) -> Fit:
    """A fit of ``label`` whose only record is its per-user test metrics."""
    run = folder / f"{label.replace('/', '-')}-seed{seed}"
    run.mkdir(parents=True)
    np.savez(run / PER_USER, **{"full/ndcg@10": np.array(ndcg)})
    return Fit.of(record(f"fit/{label}/seed{seed}", 1.0, {}), run)


def test_an_improvement_over_fewer_seeds_than_its_cells_names_the_seeds_it_compares(tmp_path):
    fits, t = [], ResultTable()

    def main_row(label: str, seed: int, value: float) -> str:
        """The first row of the main table once a fit of ``label`` at ``value`` is added."""
        fits.append(per_user_fit(tmp_path, label, seed, [value, value]))
        t.add(method=label, seed=seed, metrics=dict.fromkeys(METRICS, value), dataset="d")
        md = comparison_table(
            t, ["sasrec"], {"backbone": "Backbone", "backbone+": "Backbone+"}, protocol="full",
            metrics=METRICS[:1], digits=4, improvements=MAIN_PAIRS,
            compare=PerUserMetrics(fits).compare,
        )  # fmt: skip
        return md.splitlines()[2]

    main_row("sasrec/backbone", 0, 0.1)
    main_row("sasrec/backbone+", 0, 0.1)
    # the cells are 0.1 and 0.15 (+50%); on the seed both have the two are level
    assert main_row("sasrec/backbone+", 1, 0.2).endswith("| +0.00% [+0.0, +0.0] (seed 0) |")
    assert main_row("sasrec/backbone", 1, 0.1).endswith("| +50.00% [+50.0, +50.0] |")


def test_slim_is_compared_with_backbone_plus_within_each_history_group(tmp_path):
    lengths = np.array([9, 4, 9, 4, 4, 9])  # users of each length interleaved
    slim = [0.1, 0.2, 0.1, 0.2, 0.2, 0.1]  # better than Backbone+ for the short ones
    fits = [
        per_user_fit(tmp_path, "sasrec/slim", 0, slim),
        per_user_fit(tmp_path, "sasrec/slim", 1, slim),
        per_user_fit(tmp_path, "sasrec/backbone+", 0, [0.1] * 6),
        per_user_fit(tmp_path, "sasrec/backbone+", 1, [0.1] * 6),
        per_user_fit(tmp_path, "gru4rec/slim", 0, [0.1] * 7),  # scored on other users
        per_user_fit(tmp_path, "gru4rec/backbone+", 0, [0.1] * 7),
    ]
    md = report(
        protocols=["full"],
        history=history_groups(lengths, 2),
        compare=PerUserMetrics(fits).compare,
    )
    section = md.split("## By history length", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| sasrec")]
    assert rows == [
        "| sasrec | SLIM vs Backbone+ | 0, 1 | 4 | 3 | 0.2000 | 0.1000 | "
        "+100.00% [+100.0, +100.0] |",
        "| sasrec | SLIM vs Backbone+ | 0, 1 | 9 | 3 | 0.1000 | 0.1000 | +0.00% [+0.0, +0.0] |",
    ]
    assert "| gru4rec" not in section
    assert "## By history length" not in report(
        protocols=["full"], history=history_groups(lengths, 2)
    )


def test_a_teacher_whose_repeats_were_dropped_says_so_in_its_row():
    from slimrec.config import load_yaml
    from slimrec.pipeline.config import RunConfig
    from slimrec.pipeline.outputs import source_label

    quickstart = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"
    config = load_yaml(RunConfig, quickstart)  # a structured teacher, repeats dropped
    assert source_label("teacher", "m", config) == "teacher (m; repeats dropped when rendered)"
    assert source_label("student", "s", config) == "student (s)"
    kept = config.model_copy(update={"teacher": config.teacher.model_copy(
        update={"drop_repeats": False})})  # fmt: skip
    assert source_label("teacher", "m", kept) == "teacher (m)"
