"""Health: 200 once the model is loaded and the database answers, 503 before."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import HolderDep, StoreDep

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={
        200: {"description": "the model is loaded and the database answers"},
        503: {"description": "not ready: the model is loading or failed, or the database"},
    },
)
def health(holder: HolderDep, store: StoreDep) -> JSONResponse:
    body: dict[str, Any] = {}
    try:
        body["queue"] = store.status_counts()
        body["database"] = "ok"
    except Exception as error:
        body["database"] = f"error: {error}"
    if holder.ready:
        pipeline = holder.current()
        ref = pipeline.classifier.ref
        body["model"] = {"name": ref.name, "version": ref.version, "uri": ref.uri}
        body["language_backend"] = pipeline.detector.name
        body["translation"] = pipeline.translator.coverage()
    healthy = holder.ready and body["database"] == "ok"
    body["status"] = "ok" if healthy else ("error" if holder.error else "loading")
    if holder.error:
        body["error"] = holder.error
    return JSONResponse(body, status_code=200 if healthy else 503)
