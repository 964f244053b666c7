"""The HTTP API: an app factory, one router per noun."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .. import __version__
from ..config import Settings
from ..routing import DeskMap
from ..runtime import PipelineHolder
from ..store import Conflict, InquiryStore, NotFound
from ..store.intake import IntakeWriter
from ..worker import Worker
from .routes import desks, health, inquiries

log = logging.getLogger(__name__)


def printable(part: object, limit: int = 100) -> str | int:
    """A name or message from a request, safe to put in an answer: short, and valid Unicode."""
    if isinstance(part, int):
        return part
    text = str(part)[:limit]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def create_app(settings: Settings, run_worker: bool = True) -> FastAPI:
    """The API, and (by default) the worker in a background thread of the same process.

    desks.yaml is validated here, so a bad file stops start-up with a message naming the entry.
    The model loads in the background: intake works at once, /health says 503 until it is ready.
    """
    desk_map = DeskMap.from_yaml(settings.desks_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = InquiryStore(settings.resolved_database_url)
        intake = IntakeWriter(store)
        holder = PipelineHolder(settings)
        stop = threading.Event()
        app.state.settings = settings
        app.state.desk_map = desk_map
        app.state.store = store
        app.state.intake = intake
        app.state.holder = holder

        def load_then_work() -> None:
            try:
                holder.load()
            except Exception:
                log.exception("the model failed to load; /health reports the error")
                return
            if run_worker:
                Worker(settings, store, holder).run(stop)

        thread = threading.Thread(target=load_then_work, name="pipeline", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            intake.close()
            thread.join(timeout=30)
            store.close()

    app = FastAPI(
        title="inquiry-router",
        version=__version__,
        description="Routes customer inquiries, in any language, to the right service desk.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        # Which field and why, never the bad value itself: it may not even be encodable.
        return JSONResponse(
            {
                "detail": [
                    {
                        "type": str(item.get("type", "")),
                        "loc": [printable(part) for part in item.get("loc", ())],
                        "msg": printable(str(item.get("msg", ""))),
                    }
                    for item in error.errors()
                ]
            },
            status_code=422,
        )

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, error: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, error: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    app.include_router(health.router)
    app.include_router(inquiries.router)
    app.include_router(desks.router)
    return app
