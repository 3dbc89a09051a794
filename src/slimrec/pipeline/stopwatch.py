"""The seconds a stage took over all its attempts, not only the one that finished it.

A fit of hours is often stopped and resumed (Ctrl-C, a machine given back, a session's
end), and its manifest's ``seconds`` should say what the whole fit cost. So the time an
attempt has spent is kept in the stage folder while it runs (``elapsed.json``, rewritten
every ``every`` seconds and when the attempt ends, however it ends), and the next
attempt starts counting from there. An attempt killed outright (SIGKILL, power) loses at
most its last ``every`` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import TracebackType

from slimrec.io import write_json_atomic

ELAPSED = "elapsed.json"


class Stopwatch:
    """``with Stopwatch(folder) as watch: ...``; then ``watch.seconds`` and ``watch.attempts``."""

    def __init__(self, folder: Path, every: float = 30.0):
        self.file = folder / ELAPSED
        self.every = every
        before = _read(self.file)
        self.before = float(before.get("seconds", 0.0))
        self.attempts = int(before.get("attempts", 0)) + 1
        self._start = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def seconds(self) -> float:
        """Every attempt's seconds so far, this one's included."""
        return self.before + time.perf_counter() - self._start

    def save(self) -> None:
        write_json_atomic(self.file, {"seconds": self.seconds, "attempts": self.attempts})

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.save()

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self.save()


def _read(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
