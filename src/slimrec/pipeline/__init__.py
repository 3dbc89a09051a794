"""``slimrec run``: the whole SLIM pipeline from one YAML config, with cached stages."""

from slimrec.pipeline.config import RunConfig
from slimrec.pipeline.runner import RunOutcome, run_pipeline

__all__ = ["RunConfig", "RunOutcome", "run_pipeline"]
