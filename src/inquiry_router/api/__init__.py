"""The HTTP API: an app factory, one router per noun."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from .. import __version__
from ..config import Settings
from ..routing import DeskMap
from ..runtime import PipelineHolder
from ..store import Conflict, InquiryStore, NotFound
from ..store.intake import IntakeWriter
from ..store.keys import bootstrap_admin
from ..worker import Worker, WorkerProcesses
from . import lead, pages
from .auth import (
    PageRefused,
    RateLimiter,
    SignInRequired,
    authorize,
    document,
    session_secret,
)
from .headers import SecurityHeaders
from .routes import desks, health, inquiries

log = logging.getLogger(__name__)


def printable(part: object, limit: int = 100) -> str | int:
    """A name or message from a request, safe to put in an answer: short, and valid Unicode."""
    if isinstance(part, int):
        return part
    text = str(part)[:limit]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def create_app(settings: Settings, run_worker: bool = True) -> FastAPI:
    """The API, and (by default) the worker: in a background thread of the same process, or
    as ``worker_processes`` processes of its own, which it starts, restarts and stops.

    desks.yaml is validated here, so a bad file stops start-up with a message naming the entry.
    The model loads in the background: intake works at once, /health says 503 until it is ready.
    """
    desk_map = DeskMap.from_yaml(settings.desks_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = InquiryStore(settings.resolved_database_url)
        created = bootstrap_admin(store.keys, settings.path(settings.admin_key_file))
        if created is not None:
            log.warning(
                "no admin key existed: created one in %s (readable only by you); sign in "
                "with it at / or send it as 'Authorization: Bearer <key>'",
                created,
            )
        intake = IntakeWriter(store)
        holder = PipelineHolder(settings)
        stop = threading.Event()
        app.state.settings = settings
        app.state.desk_map = desk_map
        app.state.store = store
        app.state.intake = intake
        app.state.holder = holder
        app.state.rate_limiter = RateLimiter(settings.intake_rate_limit)

        processes = None
        if run_worker and settings.worker_processes:
            processes = WorkerProcesses(settings)
            processes.start()

        def load_then_work() -> None:
            try:
                holder.load()
            except Exception:
                log.exception("the model failed to load; /health reports the error")
                return
            if run_worker and processes is None:
                Worker(settings, store, holder).run(stop)

        thread = threading.Thread(target=load_then_work, name="pipeline", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            if processes is not None:
                processes.stop()
            intake.close()
            thread.join(timeout=30)
            store.close()

    app = FastAPI(
        title="inquiry-router",
        version=__version__,
        description="Routes customer inquiries, in any language, to the right service desk.",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],  # every route's access rule, from auth.POLICY
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie="inquiry_router_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(SecurityHeaders)

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

    @app.exception_handler(SignInRequired)
    async def sign_in(_request: Request, _error: SignInRequired) -> RedirectResponse:
        return RedirectResponse("/", status_code=303)

    @app.exception_handler(PageRefused)
    async def page_refused(request: Request, error: PageRefused) -> Response:
        return pages.render(
            request, "refused.html", status_code=error.status_code, error=error.detail
        )

    app.include_router(health.router)
    app.include_router(inquiries.router)
    app.include_router(desks.router)
    app.include_router(pages.router)
    app.include_router(lead.router)
    app.mount("/static", StaticFiles(packages=[("inquiry_router.api", "static")]), name="static")
    document(app)
    return app
