"""``slimrec recommend``: a recommendation and its rationale as readable terminal text.

Rendered with ``rich`` (a table with the three steps above it) when it is installed and
as plain aligned text otherwise; both are the same :class:`Recommendation` the API
serves. Titles, ids and rationales are untrusted text: their control and format
characters are shown as spaces (no escape sequence reaches the terminal), and ``rich``
markup in them is escaped.
"""

from __future__ import annotations

from slimrec.llm.sanitize import printable
from slimrec.serve.service import Recommendation

STEP_NAMES = ("Preferences", "Categories", "Items")


def describe(rec: Recommendation) -> str:
    who = f"user {rec.user}" if rec.user is not None else "the given history"
    m = rec.model
    return f"top {len(rec.items)} for {who} ({m.get('method')}, {m.get('backbone') or 'text'})"


def plain(rec: Recommendation) -> str:
    """The recommendation as plain text (no colours, fixed columns)."""
    lines = [describe(rec), ""]
    e = rec.explanation
    if e is None:
        lines.append("rationale: none (the run has no student)")
    else:
        lines.append(f"rationale ({e.source}):")
        for name, step in zip(STEP_NAMES, e.steps, strict=True):
            text = " ".join(printable(step).split()) or "(not found)"
            lines.append(f"  {name}: {text}")
        if not any(e.steps):
            lines.append(f"  whole text: {' '.join(printable(e.text).split())}")
    lines.append("")
    titles = [printable(s.item.title) for s in rec.items]
    width = min(max([len(t) for t in titles] + [5]), 60)
    lines.append(f"{'#':>3}  {'title':<{width}}  {'id':<12}  {'score':>8}")
    for rank, (s, title) in enumerate(zip(rec.items, titles, strict=True), start=1):
        title = title if len(title) <= width else title[: width - 1] + "…"
        lines.append(
            f"{rank:>3}  {title:<{width}}  {printable(s.item.raw_id):<12}  {s.score:>8.4f}"
        )
    return "\n".join(lines)


def print_rich(rec: Recommendation) -> None:
    """Print with rich: the steps as a small table, the items as another."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{escape(describe(rec))}[/bold]")
    e = rec.explanation
    why = Table(title=f"rationale ({e.source})" if e else "rationale: none", show_header=False)
    why.add_column("step", style="bold")
    why.add_column("text")
    for name, step in zip(STEP_NAMES, e.steps if e else ("", "", ""), strict=True):
        why.add_row(name, escape(printable(step).strip() or "(not found)"))
    if e is not None and not any(e.steps):
        why.add_row("Whole text", escape(printable(e.text).strip()))
    console.print(why)
    items = Table(title="recommended")
    for column, justify in (("#", "right"), ("title", "left"), ("id", "left"), ("score", "right")):
        items.add_column(column, justify=justify)  # type: ignore[arg-type]
    for rank, s in enumerate(rec.items, start=1):
        title, raw_id = printable(s.item.title), printable(s.item.raw_id)
        items.add_row(str(rank), escape(title), escape(raw_id), f"{s.score:.4f}")
    console.print(items)


def show(rec: Recommendation, *, style: str = "auto") -> str | None:
    """Print ``rec`` with rich (``auto``/``rich``) or return the plain text (``plain``)."""
    if style != "plain":
        try:
            print_rich(rec)
            return None
        except ImportError:
            if style == "rich":
                raise
    return plain(rec)
