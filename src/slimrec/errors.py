"""Errors that reach the user as one clear line.

Every problem with the user's input is raised as a :class:`SlimrecError` whose message
names *what* is wrong, *where* (file, column, line) and *how to fix it*. The CLI prints
it on one line and exits non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class SlimrecError(Exception):
    """A user-facing error: the message is the whole story, on one line."""

    def __init__(self, problem: str, *, where: str | Path | None = None, fix: str | None = None):
        self.problem = problem
        self.where = str(where) if where is not None else None
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [f"{self.where}: {self.problem}" if self.where else self.problem]
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return " -- ".join(p.replace("\n", " ") for p in parts)


class DataError(SlimrecError):
    """Input data is missing, malformed, or left empty by filtering."""


class ConfigError(SlimrecError):
    """An option or configuration value is invalid."""
