"""report.md and results.json of a pipeline run, in the SLIM paper's table layout.

Main table (Wang et al., WWW 2024, Table 2): one row per backbone and metric, columns
Backbone, Backbone+, SLIM-, SLIM and the improvement of SLIM over Backbone+ (and of
Backbone+ over Backbone: what item text alone gives) in percent with its paired
bootstrap 95% interval over test users, cells mean ± std over seeds; once
per test protocol (full ranking, sampled 1 + 100). A caveat heads the results when they
rest on fewer than 1,000 test users or 3 seeds. Then the text controls ("does the text
help at all?": SLIM against the same model with zero or shuffled rationales, and the
paper's concat fusion), the ID-agnostic row (text matching), the step ablation
(SLIM-Step1/2/3 vs SLIM), SLIM against Backbone+ and its shuffled text within groups of
users by history length, the quality of the rationales, the long-tail plot, what each
stage cost, and where and when it ran.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from slimrec.eval.groups import UserGroup
from slimrec.eval.results import ResultTable, Summary
from slimrec.pipeline.per_user import Comparison
from slimrec.pipeline.plots import group_labels
from slimrec.pipeline.stage import StageRecord

MAIN_COLUMNS = {"backbone": "Backbone", "backbone+": "Backbone+", "slim-": "SLIM-", "slim": "SLIM"}
# The paper's claim (SLIM over its strongest baseline), then what item text alone gives.
MAIN_PAIRS = (("slim", "backbone+"), ("backbone+", "backbone"))
ABLATION_COLUMNS = {
    "slim-step1": "SLIM-Step1",
    "slim-step2": "SLIM-Step2",
    "slim-step3": "SLIM-Step3",
    "slim": "SLIM",
}
CONTROL_COLUMNS = {
    "backbone+": "Backbone+",
    "slim-zero-text": "zero text",
    "slim-shuffled-text": "shuffled text",
    "slim-history-text": "history titles",
    "slim-mean-text": "mean text",
    "slim-random-text": "random code",
    "slim-oracle-text": "oracle text (leaks)",
    "slim-residual-oracle-text": "residual, oracle text (leaks)",
    "slim-gate-oracle-text": "gate, oracle text (leaks)",
    "slim-concat-shuffled-text": "concat, shuffled text",
    "slim-residual-shuffled-text": "residual, shuffled text",
    "slim-gate-shuffled-text": "gate, shuffled text",
    "slim-concat": "SLIM (paper's concat)",
    "slim-residual": "SLIM (residual)",
    "slim-gate": "SLIM (gate)",
    "slim": "SLIM",
}
CONTROL_PAIRS = (
    ("slim", "slim-zero-text"),
    ("slim", "slim-shuffled-text"),
    ("slim", "backbone+"),
    # The titles the rationale was written from, without the reasoning: SLIM's LLM adds
    # something beyond them only where SLIM also beats this one.
    ("slim", "slim-history-text"),
    # One vector for all users, and a random one per user: where SLIM does no better, its
    # gain is an offset (or a code for the user) that any text opens, not what it says.
    ("slim", "slim-mean-text"),
    ("slim", "slim-random-text"),
    ("slim-mean-text", "backbone+"),
    # The positive control: what a rationale that named the next items would give.
    ("slim-oracle-text", "slim"),
    # Every other fusion has its own text control: its gain over Backbone+ is the text's
    # only where it also beats itself on someone else's rationales.
    ("slim-concat", "slim-concat-shuffled-text"),
    ("slim-concat", "backbone+"),
    ("slim-residual", "slim-residual-shuffled-text"),
    ("slim-residual", "backbone+"),
    ("slim-gate", "slim-gate-shuffled-text"),
    ("slim-gate", "backbone+"),
    # Which fusion passes on most of text that names the next items.
    ("slim-oracle-text", "slim-residual-oracle-text"),
    ("slim-oracle-text", "slim-gate-oracle-text"),
)
# ID-agnostic SLIM scores from the rationale alone, so against shuffled rationales it
# says whether the text carries the user's signal at all, with no sequence model to hide it.
AGNOSTIC_COLUMNS = {
    "text-matching": "text matching",
    "text-matching-shuffled-text": "shuffled text",
    "text-matching-history-text": "history titles",
}
AGNOSTIC_PAIRS = (
    ("text-matching", "text-matching-shuffled-text"),
    ("text-matching", "text-matching-history-text"),
)
# Compared within groups of users by history length: the headline and whether the text
# (not the extra parameters) is what helps, where a user's sequence says least.
HISTORY_PAIRS = (
    ("slim", "backbone+"),
    ("slim", "slim-shuffled-text"),
    ("slim-residual", "backbone+"),
    ("slim-residual", "slim-residual-shuffled-text"),
    ("slim-gate", "backbone+"),
    ("slim-gate", "slim-gate-shuffled-text"),
)
NO_IDS = "no IDs"
MIN_USERS, MIN_SEEDS = 1000, 3
PROTOCOL_TITLES = {
    "full": "full ranking over all items",
    "sampled": "sampled: the target among {negatives} random items the user has not "
    "interacted with",
}


def run_label(backbone: str | None, method: str) -> str:
    """The method name of a fit in the result table: ``sasrec/slim``, or ``text-matching``."""
    return method if backbone is None else f"{backbone}/{method}"


def _cell(table: ResultTable, method: str, metric: str, protocol: str) -> Summary | None:
    try:
        return table.cell(method, metric, protocol=protocol)
    except KeyError:
        return None


def _row(cells: Sequence[Summary | None], digits: int) -> list[str]:
    """Formatted cells, the best mean of the row in bold (when more than one is there)."""
    means = [c.mean for c in cells if c is not None]
    best = max(means) if len(means) > 1 else None
    shown = []
    for c in cells:
        text = "–" if c is None else c.format(digits)
        shown.append(f"**{text}**" if c is not None and c.mean == best else text)
    return shown


def _improvement(a: Summary | None, b: Summary | None) -> str:
    if a is None or b is None or not b.mean:
        return "–"
    value = 100.0 * (a.mean - b.mean) / b.mean
    return "–" if math.isnan(value) else f"{value:+.2f}%"


# (label a, label b, "protocol/metric", users or None for all) -> a vs b, or None.
CompareFn = Callable[[str, str, str, np.ndarray | None], Comparison | None]


def _compared(found: Comparison | None, a: Summary | None, b: Summary | None) -> str:
    """An Improv. cell: the paired interval, naming its seeds where the cells ``a``, ``b``
    average others too; the ratio of the cells where there is no interval."""
    if found is None or found.interval is None:
        return _improvement(a, b)
    text = found.interval.format()
    if any(cell is not None and cell.n != len(found.seeds) for cell in (a, b)):
        text += f" (seed{'s' if len(found.seeds) > 1 else ''} {', '.join(map(str, found.seeds))})"
    return text


def comparison_table(
    table: ResultTable,
    backbones: Sequence[str | None],
    columns: dict[str, str],
    *,
    protocol: str,
    metrics: Sequence[str],
    digits: int,
    improvements: Sequence[tuple[str, str]] = (),
    compare: CompareFn | None = None,
) -> str | None:
    """Rows = backbone x metric, columns = methods; ``None`` when no column has runs. A
    backbone of ``None`` is the row of methods without one (text matching).

    ``improvements``: pairs ``(a, b)`` of method keys, those with both present shown as
    ``Improv. (a vs b)`` in percent, with ``compare``'s paired bootstrap interval where
    it has one (else the plain ratio of the means). That interval compares the seeds both
    methods have; where a cell rests on other seeds too, the improvement names its seeds,
    since it is then not the ratio of the cells beside it.
    """
    present = [m for m in columns if any(_has(table, run_label(b, m), protocol) for b in backbones)]
    if not present:
        return None
    pairs = [p for p in improvements if set(p) <= set(present)]
    header = ["model", "metric", *(columns[m] for m in present)]
    header += [f"Improv. ({columns[a]} vs {columns[b]})" for a, b in pairs]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for backbone in backbones:
        for metric in metrics:
            cells = [_cell(table, run_label(backbone, m), metric, protocol) for m in present]
            row = [backbone or NO_IDS, metric, *_row(cells, digits)]
            for a, b in pairs:
                la, lb = run_label(backbone, a), run_label(backbone, b)
                found = compare(la, lb, f"{protocol}/{metric}", None) if compare else None
                cell_a, cell_b = (_cell(table, label, metric, protocol) for label in (la, lb))
                row.append(_compared(found, cell_a, cell_b))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def group_tables(
    groups: Sequence[tuple[str, np.ndarray]],
    title: str,
    backbones: Sequence[str],
    protocols: Sequence[str],
    metric: str,
    compare: CompareFn,
    digits: int,
) -> list[str]:
    """``### protocol`` + one row per backbone, pair of :data:`HISTORY_PAIRS` and group
    (``(label, test user indices)``, the groups covering every test user once; ``title``
    heads the label column): users, both means (over the seeds both have and the group's
    users), the interval."""
    names = {**CONTROL_COLUMNS, **MAIN_COLUMNS}
    n_users = sum(len(users) for _, users in groups)
    parts = []
    for protocol in protocols:
        lines = []
        for backbone, (a, b) in ((bb, pair) for bb in backbones for pair in HISTORY_PAIRS):
            la, lb, key = run_label(backbone, a), run_label(backbone, b), f"{protocol}/{metric}"
            whole = compare(la, lb, key, None)
            if whole is None or whole.n_scored != n_users:  # scored on other users
                continue
            for label, users in groups:
                found = compare(la, lb, key, users)
                assert found is not None  # the same fits as ``whole``
                interval = found.interval.format() if found.interval else "–"
                lines.append(
                    f"| {backbone} | {names[a]} vs {names[b]} | "
                    f"{', '.join(map(str, found.seeds))} | {label} | "
                    f"{len(users):,} | {found.mean_a:.{digits}f} | "
                    f"{found.mean_b:.{digits}f} | {interval} |"
                )
        if lines:
            header = (
                f"| model | comparison | seeds | {title} | users | "
                f"first: {metric} | second: {metric} | first vs second |\n"
                "|---|---|---|---|---:|---:|---:|---:|"
            )
            parts.append(f"### {protocol}\n\n{header}\n" + "\n".join(lines) + "\n")
    return parts


def per_protocol_tables(
    table: ResultTable,
    backbones: Sequence[str | None],
    protocols: Sequence[str],
    columns: dict[str, str],
    *,
    needs: Sequence[str],
    **options: Any,
) -> list[str]:
    """``### protocol`` + :func:`comparison_table` for each protocol with a run of any
    method in ``needs`` (a section that only has SLIM itself is left out)."""
    parts = []
    for protocol in protocols:
        if not any(_has(table, run_label(b, m), protocol) for b in backbones for m in needs):
            continue
        part = comparison_table(table, backbones, columns, protocol=protocol, **options)
        if part:
            parts.append(f"### {protocol}\n\n{part}")
    return parts


def other_methods(
    table: ResultTable, backbones: Sequence[str], protocols: Sequence[str]
) -> list[str]:
    """Methods trained on a backbone that none of SLIM's tables shows (LLM-SRec, ...)."""
    shown = {*MAIN_COLUMNS, *ABLATION_COLUMNS, *CONTROL_COLUMNS}
    prefixes = tuple(f"{b}/" for b in backbones)
    labels = [m for p in protocols for m in (table.methods(protocol=p) if table.runs else [])]
    found = [label.split("/", 1)[1] for label in labels if label.startswith(prefixes)]
    return [m for m in dict.fromkeys(found) if m not in shown]


def random_reference(n_candidates: int, metrics: Sequence[str]) -> str:
    """What a random ranking of the sampled lists scores, in expectation (the floor every
    method there must clear: HR@K = K / C)."""
    values = []
    for metric in metrics:
        name, _, k_text = metric.partition("@")
        if not k_text.isdigit():
            continue
        ranks = np.arange(1, min(int(k_text), n_candidates) + 1)
        gain = {"hit": np.ones(len(ranks)), "ndcg": 1 / np.log2(ranks + 1), "mrr": 1 / ranks}
        if name in gain:
            values.append(f"{metric} {gain[name].sum() / n_candidates:.4f}")
    if not values:
        return ""
    return (
        f"A random ranking of the sampled lists (1 + {n_candidates - 1} candidates) "
        f"scores {', '.join(values)}.\n"
    )


def caveat(n_test_users: int, n_seeds: int, thin: dict[str, int] | None = None) -> str | None:
    """One line when the tables rest on too few users or seeds to read small differences.
    ``thin``: the methods with fewer than ``MIN_SEEDS`` seeds and their counts, where
    only some have so few (a run gathered over sessions); they are named."""
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if thin:
        named = ", ".join(f"{m} ({n} seed{'s' if n != 1 else ''})" for m, n in thin.items())
        seeds = f"fewer than {MIN_SEEDS} seeds for {named}"
    if n_test_users < MIN_USERS:
        return (
            f"> **Caveat: a small run.** These tables rest on {n_test_users:,} test users and "
            f"{seeds} (fewer than {MIN_USERS:,} users): a difference inside its bracketed "
            "interval is noise. Read it as a check that the pipeline runs, not as a "
            "measurement of the methods.\n"
        )
    if n_seeds < MIN_SEEDS:
        return (
            f"> **Caveat: {seeds}.** The intervals cover the {n_test_users:,} test users, "
            f"not training randomness: another seed can move a mean by more (fewer than "
            f"{MIN_SEEDS} seeds). Read a difference as settled only once it holds over seeds.\n"
        )
    return None


def rationale_quality_table(rows: Sequence[dict[str, Any]]) -> str:
    """One row per rationale source: answers, parse, cap-hit, repeated-line, in-line loop
    ("--" for a row measured before that check), echo and
    five-distinct-categories rates, and
    (when measured) step 3's suggestions grounded in the catalog, new to the user, and
    users whose next item is among them, against as many popular items and, where the
    prompt offered candidates, as many of the pool's best; then the zero-training probe
    (:mod:`slimrec.methods.slim.probe`): the next item's median rank by cosine with the
    rationale, with the titles it read, and the gap."""
    grounded = any("grounded" in r for r in rows)
    pooled = any("pool_hit" in r for r in rows)
    probed = any("probe" in r for r in rows)
    head = (
        "| rationales | users | parsed into 3 steps | at the token cap | repeating a line "
        "| looping within a line | echoing the instructions | five distinct categories "
        "| mean tokens |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    if grounded:
        head += (
            " step-3 suggestions | in the catalog | new to the user | next item named "
            "| as many popular items |"
        )
        rule += "---:|---:|---:|---:|---:|"
    if pooled:
        head += " as many of the pool's best candidates | picks in the order listed |"
        rule += "---:|---:|"
    if probed:
        head += " next item's median rank: rationale | titles it read | gap |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    for r in rows:
        line = (
            f"| {r['source']} | {r['answers']:,} | {100 * r['parse_rate']:.1f}% | "
            f"{100 * r['cap_rate']:.1f}% | {100 * r['repeat_rate']:.1f}% | "
            f"{_share(r.get('loop_rate'))} | {100 * r.get('echo_rate', 0):.1f}% | "
            f"{100 * r.get('distinct_rate', 0):.1f}% | "
            f"{r['mean_tokens']:.0f} |"
        )
        if grounded:
            line += (
                f" {r.get('suggestions', 0):,} | {100 * r.get('grounded', 0):.1f}% | "
                f"{100 * r.get('new', 0):.1f}% | {100 * r.get('hit', 0):.1f}% | "
                f"{_share(r.get('popular_hit'))} |"
            )
        if pooled:
            line += f" {_share(r.get('pool_hit'))} | {_share(r.get('in_listed_order'))} |"
        if probed:
            p = r.get("probe")
            line += (
                f" {100 * p['rationale']:.1f}% | {100 * p['titles']:.1f}% | "
                f"{p['gap']:+.1f} pts [{p['low']:+.1f}, {p['high']:+.1f}] |"
                if p is not None
                else " | | |"
            )
        lines.append(line)
    text = "\n".join(lines) + "\n"
    if grounded:
        text += (
            "\nStep 3 grounded: each suggestion resolved to a catalog title (exact, else "
            "fuzzy); *next item named*: users one of whose grounded suggestions is among "
            "their items after the prompt's history; *as many popular items*: the same for "
            "as many of the most popular items (training counts) the user has not had, the "
            "control a teacher's suggestions must beat to know more than item counts.\n"
        )
    if probed:
        text += (
            "\nNext item's median rank: every item ranked by the cosine between the "
            "rationale's embedding and the item's, no training, the test item's rank as a "
            "share of the catalog (lower is better), against the mean embedding of the "
            "titles the rationale read; the gap is in points with a bootstrap 95% interval "
            "over users. A rationale that reasons beyond the history it read ranks the next "
            "item above its titles.\n"
        )
    return text


def _share(value: float | None) -> str:
    return "--" if value is None else f"{100 * value:.1f}%"


def quote(text: str, limit: int = 1200) -> str:
    """Untrusted model output as an indented code block: no markdown or HTML of it renders."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "\n".join("    " + line for line in (text.replace("\r", "").splitlines() or [""]))


def _has(table: ResultTable, method: str, protocol: str) -> bool:
    return any(r.method == method and r.protocol == protocol for r in table.runs)


def stage_costs(records: Sequence[StageRecord]) -> list[dict[str, Any]]:
    """Per stage kind (prepare, teach, ..., fit): runs, compute seconds and costs summed."""
    kinds: dict[str, dict[str, Any]] = {}
    for r in records:
        row = kinds.setdefault(r.kind, {"stage": r.kind, "runs": 0, "seconds": 0.0})
        row["runs"] += 1
        row["seconds"] += r.compute_seconds
        for key, value in r.cost.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                row[key] = row.get(key, 0) + value
    return list(kinds.values())


def costs_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| stage | runs | wall time (s) | teacher tokens (prompt + completion) "
        "| teacher cost (USD) | student tokens |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        prompt, completion = row.get("teacher_prompt_tokens"), row.get("teacher_completion_tokens")
        teacher = f"{prompt:,} + {completion:,}" if prompt is not None else ""
        cost = row.get("teacher_cost_usd")
        student = row.get("student_tokens")
        lines.append(
            f"| {row['stage']} | {row['runs']} | {row['seconds']:.1f} | {teacher} | "
            f"{'' if cost is None else f'{cost:.4f}'} | "
            f"{'' if student is None else f'{student:,}'} |"
        )
    total = sum(row["seconds"] for row in rows)
    lines.append(f"| **total** | | {total:.1f} | | | |")
    return "\n".join(lines) + "\n"


def machines_line(records: Sequence[StageRecord]) -> str:
    """Where the stages were computed: a long run's stages come from several sessions, each
    on a fresh machine, and their times and last digits depend on the CPU."""
    counts: dict[str, int] = {}
    for r in records:
        where = r.machine or "not recorded (computed before stages kept it)"
        counts[where] = counts.get(where, 0) + 1
    if not counts:
        return ""
    listed = "; ".join(f"{where}: {n} stage{'s' * (n != 1)}" for where, n in counts.items())
    return f"- stages computed on: {listed}\n"


def popularity_table(shares: dict[str, dict[str, list[float]]], top_k: int) -> str:
    n_groups = len(next(iter(next(iter(shares.values())).values())))
    labels = [label.replace("\n", " ") for label in group_labels(n_groups)]
    lines = [
        f"| model | method | {' | '.join(labels)} |",
        "|---|---|" + "---:|" * n_groups,
    ]

    def row(model: str, method: str, values: list[float]) -> str:
        return f"| {model} | {method} | " + " | ".join(f"{100 * v:.1f}%" for v in values) + " |"

    # The ID-agnostic models and the test targets are in every backbone's panel of the plot,
    # the same each time: the table lists them once.
    first = next(iter(shares.values()))
    shared = [
        m
        for m in first
        if len(shares) > 1 and all(series.get(m) == first[m] for series in shares.values())
    ]
    for panel, series in shares.items():
        lines += [row(panel, m, v) for m, v in series.items() if m not in shared]
    lines += [row("all", m, first[m]) for m in shared]
    return (
        f"Share of each method's top-{top_k} recommendations (test histories) per item "
        "popularity group, groups of equal item count by training interactions:\n\n"
        + "\n".join(lines)
        + "\n"
    )


def render_report(
    *,
    name: str,
    dataset: str,
    dataset_stats: dict[str, Any],
    config_hash: str,
    table: ResultTable,
    backbones: Sequence[str],
    protocols: Sequence[str],
    metrics: Sequence[str],
    digits: int,
    seeds: Sequence[int],
    records: Sequence[StageRecord],
    popularity: dict[str, dict[str, list[float]]] | None,
    plot_file: str | None,
    top_k: int,
    without_weights: Sequence[str] = (),
    hw: dict[str, Any],
    date: str | None = None,
    legend: dict[str, str] | None = None,
    n_test_users: int | None = None,
    quality: Sequence[dict[str, Any]] = (),
    samples: dict[str, str] | None = None,
    diagnostics: Sequence[str] = (),
    negatives: int = 100,
    history: Sequence[UserGroup] = (),
    coverage: Sequence[tuple[str, np.ndarray]] = (),
    compare: CompareFn | None = None,
    preamble: Sequence[str] = (),
) -> str:
    """The whole report.md.

    ``compare``: paired comparisons between fits, over all test users or a group of
    them (None: ratios of means only); ``n_test_users`` for the caveat; ``quality`` rows
    of :func:`rationale_quality_table` and ``samples`` (source -> one user's rationale,
    the same user for each source);
    ``diagnostics``: finished markdown sections (the order-sensitivity tables);
    ``history``: groups of test users by history length, compared through ``compare``;
    ``coverage``: (label, test users) with and without the student's rationale, where it
    reaches only some users (compared the same way);
    ``preamble``: finished markdown sections to put before the results.
    """
    date = date or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    stats = ", ".join(
        f"{k.replace('_', ' ')} {v:,}"
        for k, v in dataset_stats.items()
        if k in ("users", "items", "interactions")
    )
    out = [
        f"# SLIM run: {name}\n",
        f"Dataset **{dataset}** ({stats}); seeds {list(seeds)}, cells mean ± std over seeds "
        "(std from 2 seeds up); best mean of a row in bold.\n",
    ]
    if legend:
        out.append("\n".join(f"- **{name}**: {text}" for name, text in legend.items()) + "\n")
    # The fewest seeds of any method: a run gathered over sessions may lack some.
    per_method: dict[str, set[int]] = {}
    for run in table.runs:
        per_method.setdefault(run.method, set()).add(run.seed)
    fewest = min((len(s) for s in per_method.values()), default=len(seeds))
    thin = {m: len(s) for m, s in sorted(per_method.items()) if len(s) < MIN_SEEDS}
    if len(thin) == len(per_method):  # every method: the run itself has too few seeds
        thin = {}
    if n_test_users is not None and (warning := caveat(n_test_users, fewest, thin)):
        out.append(warning)
    out.extend(preamble)
    if compare is not None:
        out.append(
            "Improvements are relative differences of the means, with a paired bootstrap "
            "95% interval over test users (each user's metric averaged over the seeds both "
            "methods have; 2,000 resamples) in brackets; where a mean beside it also "
            "averages other seeds, the improvement names the seeds it compares.\n"
        )
    for protocol in protocols:
        title = PROTOCOL_TITLES.get(protocol, protocol).format(negatives=negatives)
        out.append(f"## Results: {title}\n")
        main = comparison_table(
            table,
            backbones,
            MAIN_COLUMNS,
            protocol=protocol,
            metrics=metrics,
            digits=digits,
            improvements=MAIN_PAIRS,
            compare=compare,
        )
        out.append(main or "No ID-based runs.\n")
    controls = per_protocol_tables(
        table,
        backbones,
        protocols,
        CONTROL_COLUMNS,
        needs=tuple(m for m in CONTROL_COLUMNS if m not in ("backbone+", "slim")),
        metrics=metrics[:1],
        digits=digits,
        improvements=CONTROL_PAIRS,
        compare=compare,
    )
    if controls:
        out.append("## Does the text help? SLIM against its text controls\n")
        out.append(
            "The same model and training with every rationale embedding set to zero, or "
            "with the rationales shuffled across users: SLIM gains from what its text says "
            "only where it beats both, with an interval that excludes zero. History titles: "
            "each rationale replaced by the mean text embedding of the items it was written "
            "from; the LLM's reasoning adds something only where SLIM beats that too. Mean "
            "text: the mean rationale for every user, one offset for all (under SLIM's gate "
            "zero text leaves the gate shut, so that model is Backbone+, and mean text is the "
            "no-information control that can open it); random code: each rationale replaced "
            "by a random vector with the rationales' mean and covariance. Where these give "
            "what SLIM gives, the fusion's gain is not what the text says. Oracle text "
            "(a positive control that leaks the future, never a result): rationales "
            "replaced by the text of the items they were to name, the ceiling of what text "
            "can give through this fusion.\n"
        )
        out.extend(controls)
    others = other_methods(table, backbones, protocols)
    if others:
        out.append("## Other methods against the plain backbone\n")
        if "sampled" in protocols:
            out.append(random_reference(negatives + 1, metrics))
        out.extend(
            per_protocol_tables(
                table,
                backbones,
                protocols,
                {"backbone": "Backbone"} | {m: m for m in others},
                needs=others,
                metrics=metrics,
                digits=digits,
                improvements=[(m, "backbone") for m in others],
                compare=compare,
            )
        )
    agnostic = per_protocol_tables(
        table,
        [None],
        protocols,
        AGNOSTIC_COLUMNS,
        needs=tuple(AGNOSTIC_COLUMNS),
        metrics=metrics,
        digits=digits,
        improvements=AGNOSTIC_PAIRS,
        compare=compare,
    )
    if agnostic:
        out.append("## ID-agnostic SLIM (text matching, no item IDs)\n")
        out.append(
            "The user's rationale matched to item texts, nothing else: against the same "
            "with the rationales shuffled across users, it says whether the text names "
            "what this user buys next; against the mean text of the items the rationale "
            "read, whether the reasoning names more than those titles.\n"
        )
        out.extend(agnostic)
    steps = per_protocol_tables(
        table,
        backbones,
        protocols,
        ABLATION_COLUMNS,
        needs=tuple(m for m in ABLATION_COLUMNS if m != "slim"),
        metrics=metrics,
        digits=digits,
    )
    if steps:
        out.append("## Step ablation: one step of the rationale vs all three\n")
        out.extend(steps)
    by_history = (
        group_tables(
            [(group.label, group.users) for group in history],
            "items before the test item",
            backbones,
            protocols,
            metrics[0],
            compare,
            digits,
        )
        if compare
        else []
    )
    by_coverage = (
        group_tables(coverage, "rationale", backbones, protocols, metrics[0], compare, digits)
        if compare and coverage
        else []
    )
    if by_coverage:
        out.append("## Users with and without a rationale\n")
        out.append(
            "The student's rationales reach only some users here (written for a subset, "
            "or reused from a run that wrote for one: `reason.rationales_file`); the others "
            "get a zero text vector. What the text does shows among the users it reaches; "
            "each comparison with its paired bootstrap 95% interval over those users.\n"
        )
        out.extend(by_coverage)
    if by_history:
        out.append("## By history length\n")
        out.append(
            "Test users in groups of about equal size by the number of items before their "
            "test item (a length is never split between groups). Text about a user should "
            "matter most where the sequence says least; each comparison with its paired "
            "bootstrap 95% interval over the group's users.\n"
        )
        out.extend(by_history)
    if quality:
        out.append("## Rationales\n")
        out.append(rationale_quality_table(quality))
        for source, text in (samples or {}).items():
            out.append(f"{source}:\n\n{quote(text)}\n")
    if popularity or without_weights:
        out.append("## Long tail: recommendations by item popularity\n")
    if plot_file:
        out.append(f"![recommendations by item popularity]({plot_file})\n")
    if popularity:
        out.append(popularity_table(popularity, top_k))
    if without_weights:
        out.append(
            "Not in the long-tail figures (fitted on another machine: their results "
            f"travelled, their weights did not): {', '.join(without_weights)}.\n"
        )
    out.extend(diagnostics)
    out.append("## Cost of each stage\n")
    out.append(
        "Wall time when each stage was computed (a cached stage costs nothing again); "
        "teacher tokens and cost count new answers only (cached answers are free).\n"
    )
    out.append(costs_table(stage_costs(records)))
    out.append("## Where and when\n")
    gpu = f", GPU {hw['gpu']}" if hw.get("gpu") else ""
    flags = " ".join(hw.get("flags") or [])
    out.append(
        f"- this report: {hw.get('cpu')}, {hw.get('cores')} cores{gpu}; lscpu flags {flags}\n"
        f"- software: Python {hw.get('python')}, torch {hw.get('torch')}\n"
        f"- date: {date}\n"
        f"- config hash: `{config_hash}` (config.yaml in this folder)\n" + machines_line(records)
    )
    return "\n".join(out)
