"""``slimrec serve``: recommendations with their rationales over HTTP, and a web page.

Routes (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``):

* ``POST /recommend`` -- a known ``user`` or a ``history`` (ids or titles) and ``k``;
* ``GET /users/{user}/recommendations`` -- the same for a known user;
* ``GET /users?q=`` and ``GET /items?q=`` -- find users and items (the page's pickers);
* ``GET /health`` -- liveness and what is served; ``GET /`` -- the web page.

Bad input is a 422 whose ``detail`` is one line naming the field (``errors`` lists them
all), an unknown user a 404, never a 500. New histories wait for the student off the
event loop; when its queue is full the answer is 503 with ``Retry-After``. When
``SLIMREC_API_KEY`` is set, the API routes need it (``Authorization: Bearer KEY`` or
``X-API-Key: KEY``); the page, ``/health`` and the schema stay open. The key and the body
size (1 MiB, else 413) are checked before any body is read
(:class:`~slimrec.serve.guard.RequestGuard`). The page is sent with a strict
Content-Security-Policy (scripts and styles from this server only), and every response
with ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import contextlib
import gc
import os
from importlib import resources
from typing import Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from slimrec.errors import SlimrecError
from slimrec.serve.catalog import Item, UnknownItem
from slimrec.serve.explainer import Busy
from slimrec.serve.guard import RequestGuard
from slimrec.serve.schemas import (
    MAX_K,
    MAX_TEXT,
    ErrorResponse,
    HealthResponse,
    ItemOut,
    ItemsResponse,
    RecommendRequest,
    RecommendResponse,
    UserOut,
    UsersResponse,
    ValidationErrorResponse,
    field_errors,
)
from slimrec.serve.service import Recommendation, RecommendService

API_KEY_ENV = "SLIMREC_API_KEY"
OPEN_PATHS = {"/", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    422: {"model": ValidationErrorResponse, "description": "Invalid request."},
}


def static_dir() -> str:
    return str(resources.files("slimrec.serve") / "static")


def _item(it: Item) -> dict[str, Any]:
    return {"id": it.id, "raw_id": it.raw_id, "title": it.title}


def to_response(rec: Recommendation) -> dict[str, Any]:
    """The JSON body of a :class:`Recommendation` (see :class:`RecommendResponse`)."""
    rationale = None
    if rec.explanation is not None:
        e = rec.explanation
        rationale = {"steps": list(e.steps), "text": e.text, "source": e.source, "parsed": e.parsed}
        rationale["suggestions"] = [
            {"text": s.text, "item": None if s.item is None else _item(s.item)}
            for s in rec.suggestions
        ]
    return {
        "user": rec.user,
        "history": [_item(it) for it in rec.history],
        "items": [
            _item(s.item) | {"rank": r, "score": s.score} for r, s in enumerate(rec.items, start=1)
        ],
        "rationale": rationale,
        "model": rec.model,
    }


def unprocessable(field: str, message: str) -> JSONResponse:
    errors = [{"field": field, "message": message}]
    return JSONResponse({"detail": f"{field}: {message}", "errors": errors}, status_code=422)


def create_app(
    service: RecommendService, *, api_key: str | None = None, close_service: bool = True
) -> FastAPI:
    """The app over ``service``.

    ``api_key`` default: ``$SLIMREC_API_KEY`` (unset or empty = no auth);
    ``close_service``: stop the student's worker when the app shuts down.
    """
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:
            if close_service:
                service.close()

    app = FastAPI(
        title="slimrec serve",
        description="Sequential recommendations with the rationale behind them (SLIM).",
        version="1",
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    app.add_middleware(
        RequestGuard,
        key=key,
        needs_key=lambda path: path not in OPEN_PATHS and not path.startswith("/static/"),
        error_body=lambda status, message: {"detail": message},
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        errors = field_errors(list(exc.errors()))
        first = errors[0]
        body = {"detail": f"{first['field']}: {first['message']}", "errors": errors}
        return JSONResponse(body, status_code=422)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(
            f"{static_dir()}/index.html", media_type="text/html", headers=PAGE_HEADERS
        )

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> dict[str, Any]:
        explainer = service.explainer
        return {
            "status": "ok",
            "model": service.model_info,
            "items": service.catalog.n_items,
            "users": len(service.catalog.user_raw),
            "student": explainer is not None,
            "pending_generations": explainer.pending if explainer else 0,
        }

    @app.post(
        "/recommend",
        response_model=RecommendResponse,
        tags=["recommend"],
        responses=ERRORS
        | {
            404: {"model": ErrorResponse, "description": "Unknown user."},
            503: {"model": ErrorResponse, "description": "Student busy; see Retry-After."},
        },
    )
    async def recommend(body: RecommendRequest):
        """Top-k items and the rationale, for a known user or any history."""
        if body.user is not None:
            return user_answer(body.user, body.k)
        history = []
        for i, ref in enumerate(body.history or []):
            try:
                history.append(service.catalog.resolve(ref))
            except UnknownItem as e:
                return unprocessable(f"body.history.{i}", f"{e}; search with GET /items?q=")
        try:
            rec = await service.for_history(history, body.k)
        except Busy as e:
            return JSONResponse(
                {"detail": str(e)},
                status_code=503,
                headers={"Retry-After": str(e.retry_after)},
            )
        except SlimrecError as e:
            return unprocessable("body.history", e.one_line())
        return JSONResponse(to_response(rec))

    @app.get(
        "/users/{user}/recommendations",
        response_model=RecommendResponse,
        tags=["recommend"],
        responses=ERRORS | {404: {"model": ErrorResponse, "description": "Unknown user."}},
    )
    async def user_recommendations(
        user: str = Path(max_length=MAX_TEXT, description="Original user id."),
        k: int = Query(10, ge=1, le=MAX_K, description="How many items to return."),
    ):
        """Top-k items for a known user, with the user's rationale from the run."""
        return user_answer(user, k)

    def user_answer(user: str, k: int):
        index = service.catalog.user_index(user)
        if index is None:
            return JSONResponse({"detail": f"no user with id {user!r}"}, status_code=404)
        # Built here and returned as is: the body is the schema's (schemathesis checks it),
        # and skipping FastAPI's re-validation of it is a measurable share of a request.
        return JSONResponse(to_response(service.for_user(index, k)))

    @app.get(
        "/users",
        response_model=UsersResponse,
        tags=["catalog"],
        responses=ERRORS,
    )
    async def users(
        q: str = Query("", max_length=MAX_TEXT, description="Part of the user id."),
        limit: int = Query(50, ge=1, le=500),
    ) -> dict[str, Any]:
        """Known users whose id contains ``q``."""
        found = service.catalog.search_users(q, limit)
        seqs = service.dataset.sequences
        return {"users": [UserOut(id=r, history_length=len(seqs[u])) for u, r in found]}

    @app.get(
        "/items",
        response_model=ItemsResponse,
        tags=["catalog"],
        responses=ERRORS,
    )
    async def items(
        q: str = Query("", max_length=MAX_TEXT, description="Part of a title or item id."),
        limit: int = Query(20, ge=1, le=MAX_K),
    ) -> dict[str, Any]:
        """Catalog items whose title or original id contains ``q`` (case-insensitive)."""
        found = service.catalog.search(q, limit)
        return {"items": [ItemOut(id=it.id, raw_id=it.raw_id, title=it.title) for it in found]}

    return app


def serve(
    run: str,
    *,
    method: str = "slim",
    backbone: str | None = None,
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 8080,
    device: str = "auto",
    student: bool = True,
    max_pending: int = 8,
    threads: int | None = 1,
) -> None:
    """Load the run's model (and student) and serve them until interrupted."""
    from slimrec.serve.listen import bind, bound_port, serve_on

    sock = bind(host, port)  # a port in use fails now, not after loading
    port = bound_port(sock)
    service = RecommendService(
        run,
        method=method,
        backbone=backbone,
        seed=seed,
        device=device,
        student=student,
        max_pending=max_pending,
        threads=threads,
    )
    app = create_app(service)
    # Everything loaded so far (torch, transformers, the models: ~0.5M objects) lives as
    # long as the process. Frozen, the cyclic GC stops walking it: a full collection
    # drops from ~750 ms (a request-latency spike whenever one runs) to ~0.
    gc.collect()
    gc.freeze()
    auth = "API key required" if os.environ.get(API_KEY_ENV) else "no API key"
    print(f"serving {run} ({method}) at http://{host}:{port}/ ({auth})", flush=True)
    serve_on(app, sock)
