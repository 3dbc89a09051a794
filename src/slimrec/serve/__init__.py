"""Serving: an OpenAI-compatible chat endpoint over local models (``slimrec serve-llm``)."""

from slimrec.serve.llm_server import create_app, serve

__all__ = ["create_app", "serve"]
