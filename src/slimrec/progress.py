"""Progress bars for long loops: on a terminal by default, in a log file when asked.

tqdm hides its bars where stderr is not a terminal (CI, pytest, ``nohup slimrec run >
log``), which keeps logs clean and leaves a background run of hours silent: an LLM-SRec
epoch on 2 CPU cores is 16 minutes without a line. ``SLIMREC_PROGRESS`` chooses:

- ``auto`` (default): bars on a terminal only;
- ``log``: every bar that lasts over a minute, each update on its own line, at most one a
  minute (the thousands of one-second epochs of an ID backbone print nothing);
- ``never``: no bars.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Literal

from tqdm.auto import tqdm

from slimrec.errors import ConfigError

Mode = Literal["auto", "log", "never"]
MODES: tuple[Mode, ...] = ("auto", "log", "never")
LOG_INTERVAL_S = 60.0


def progress_mode() -> Mode:
    """``SLIMREC_PROGRESS``, checked (the CLI checks it before any work)."""
    mode = os.environ.get("SLIMREC_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ConfigError(
            f"unknown progress mode {mode!r}",
            where="$SLIMREC_PROGRESS",
            fix=f"set it to one of {', '.join(MODES)}, or unset it",
        )
    return mode  # type: ignore[return-value]


def progress(iterable: Iterable | None = None, *, shown: bool | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar over ``iterable`` (or one updated by hand) as ``SLIMREC_PROGRESS`` says.

    ``shown``: a caller's own ``progress`` option. False hides the bar in every mode; True
    shows it under ``auto`` off a terminal too (the teacher's and the student's bars,
    which have always gone into logs); None leaves it to the mode.
    """
    mode = progress_mode()
    if shown is False or mode == "never":
        return tqdm(iterable, disable=True, **kwargs)
    if mode == "log":
        # A newline after each refresh: a log reads as lines, not one line of carriage returns.
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", LOG_INTERVAL_S)  # tqdm's monitor would add stale lines
        kwargs.setdefault("delay", LOG_INTERVAL_S)
        kwargs.setdefault("bar_format", "{l_bar}{bar:20}{r_bar}\n")
        kwargs.setdefault("position", 0)  # nested bars move the cursor up otherwise
        return tqdm(iterable, disable=False, **kwargs)
    return tqdm(iterable, disable=None if shown is None else False, **kwargs)
