"""The support lead's page (admin key): what the desks corrected since the champion was trained,
the live triage and routed error rates week by week, the model versions with their figures,
and compare, promote and roll back, each recorded with who and why."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..lifecycle.promotion import Comparison, PromotionError, compare
from ..registry import ModelRegistry, RegistryError
from ..store.tables import utcnow
from .auth import current_key
from .deps import settings_of, store_of
from .pages import render

router = APIRouter(include_in_schema=False)
WEEKS = 12


def _overview(request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    store = store_of(request)
    registry = ModelRegistry(settings)
    versions = registry.versions(settings.model_name)
    champion = next((v for v in versions if v["champion"]), None)
    trained = (
        datetime.fromtimestamp(champion["created"] / 1000, UTC).replace(tzinfo=None)
        if champion and champion.get("created")
        else None
    )
    since = store.corrections(limit=None, since=trained)
    weeks = store.weekly(utcnow() - timedelta(weeks=WEEKS))
    return {
        "versions": list(reversed(versions)),
        "champion": champion,
        "trained": trained,
        "corrections": len(since),
        "by_desk": Counter(f"{c.from_desk} → {c.corrected_desk}" for c in since).most_common(10),
        "by_intent": Counter(c.model_intent or "-" for c in since).most_common(10),
        "new_labels": sorted(
            {c.corrected_intent for c in since if c.new_intent and c.corrected_intent}
        ),
        "weeks": weeks,
        "peak": max((max(w.triage_rate, w.routed_error_rate) for w in weeks), default=0.0),
    }


def _page(
    request: Request,
    comparison: Comparison | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "lead.html",
        status_code=status_code,
        comparison=comparison,
        error=error,
        **_overview(request),
    )


@router.get("/lead", response_class=HTMLResponse)
def page_lead(request: Request) -> Response:
    return _page(request)


def _reason(form: dict[str, str], default: str) -> str:
    return (form.get("reason", "").strip() or default)[:500]


@router.post("/lead/promote", response_class=HTMLResponse)
def page_lead_promote(request: Request) -> Response:
    form: dict[str, str] = request.state.form_fields
    settings = settings_of(request)
    version = form.get("version", "").strip()
    try:
        ModelRegistry(settings).set_champion(
            settings.model_name,
            version,
            by=current_key(request).name,
            reason=_reason(form, "promoted from the lead's page"),
        )
    except RegistryError as error:
        return _page(request, error=str(error), status_code=400)
    request.session["flash"] = f"Version {version} is @champion; services switch within a minute."
    return RedirectResponse("/lead", status_code=303)


@router.post("/lead/rollback", response_class=HTMLResponse)
def page_lead_rollback(request: Request) -> Response:
    form: dict[str, str] = request.state.form_fields
    settings = settings_of(request)
    try:
        version = ModelRegistry(settings).rollback(
            settings.model_name,
            by=current_key(request).name,
            reason=_reason(form, "rolled back from the lead's page"),
        )
    except RegistryError as error:
        return _page(request, error=str(error), status_code=409)
    request.session["flash"] = f"Rolled back: version {version} is @champion again."
    return RedirectResponse("/lead", status_code=303)


@router.post("/lead/compare", response_class=HTMLResponse)
async def page_lead_compare(request: Request) -> Response:
    settings = settings_of(request)
    try:
        comparison = await run_in_threadpool(compare, settings)
    except PromotionError as error:
        return _page(request, error=str(error), status_code=409)
    return _page(request, comparison=comparison)
