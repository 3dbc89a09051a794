"""Serving: an OpenAI-compatible chat endpoint over local models (``slimrec serve-llm``)
and recommendations with their rationales from a finished run (``slimrec serve``,
:mod:`slimrec.serve.app`; ``slimrec recommend``)."""

from slimrec.serve.llm_server import create_app, serve

__all__ = ["create_app", "serve"]
