"""The desk page: server-rendered (Jinja2, autoescaped), no build step, one small script of
our own. Signed in with a desk or admin key; every form carries the session's CSRF token, and
access is decided by the same rules as the API (``auth.POLICY``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from ..domain import Status
from ..routing import DeskMap
from ..store import Conflict, InquiryRecord, NotFound
from ..store.keys import ApiKey
from .auth import CSRF_FIELD, SESSION_KEY, csrf_token, current_key
from .body import read_form
from .deps import desk_map_of, settings_of, store_of
from .routes.desks import checked_reroute
from .schemas import INTENT_PATTERN, RerouteRequest

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
QUEUE_STATUSES = (Status.ROUTED, Status.CLAIMED, Status.RESOLVED)
PAGE_SIZE = 25
ACTIONS = ("claim", "release", "resolve", "reroute")


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    key: ApiKey | None = request.state.key
    desk_map = desk_map_of(request)
    desks = desk_map.names if key is not None and key.is_admin else ([key.desk] if key else [])
    context.setdefault("desk", None)
    return templates.TemplateResponse(
        request,
        template,
        {
            "key": key,
            "desks": desks,
            "triage_desk": desk_map.triage_desk,
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            "flash": request.session.pop("flash", None),
            **context,
        },
        status_code=status_code,
    )


def _home_of(key: ApiKey, desk_map: DeskMap) -> str:
    return f"/desks/{key.desk or desk_map.triage_desk}"


@router.get("/", response_class=HTMLResponse)
async def page_home(request: Request) -> Response:
    key_id = request.session.get(SESSION_KEY)
    if key_id:
        key = await run_in_threadpool(store_of(request).keys.active, str(key_id))
        if key is not None:
            return RedirectResponse(_home_of(key, desk_map_of(request)), status_code=303)
    return render(request, "sign_in.html")


@router.post("/sign-in", response_class=HTMLResponse)
async def page_sign_in(request: Request) -> Response:
    form = await read_form(request)
    token = form.get("key", "").strip()
    key = await run_in_threadpool(store_of(request).keys.authenticate, token) if token else None
    if key is None:
        return render(
            request,
            "sign_in.html",
            status_code=401,
            error="That key is not valid, or it was revoked.",
        )
    request.session.clear()  # a new session: no fixation, a new CSRF token
    request.session[SESSION_KEY] = key.id
    request.state.key = key
    return RedirectResponse(_home_of(key, desk_map_of(request)), status_code=303)


@router.post("/sign-out")
async def page_sign_out(request: Request) -> Response:
    request.session.clear()
    request.session["flash"] = "You are signed out."
    return RedirectResponse("/?signed-out", status_code=303)


def _known_desk(request: Request, desk: str) -> None:
    if desk not in desk_map_of(request).desks:
        raise HTTPException(404, f"no desk {desk[:64]!r}")


@router.get("/desks/{desk}", response_class=HTMLResponse)
def page_queue(
    request: Request,
    desk: str,
    status: str = "routed",
    language: str = "",
    auto: str = "",
    cursor: str = "",
) -> Response:
    """A desk's queue: counts per status, oldest first, paged, filtered."""
    _known_desk(request, desk)
    store = store_of(request)
    problems = []
    if status not in {s.value for s in QUEUE_STATUSES}:
        problems.append(f"status must be one of {', '.join(s.value for s in QUEUE_STATUSES)}")
        status = Status.ROUTED.value
    if auto not in ("", "yes", "no"):
        problems.append("auto-routed must be yes, no or empty")
        auto = ""
    language = language.strip().lower()[:8]
    try:
        page = store.list_desk(
            desk,
            Status(status),
            PAGE_SIZE,
            cursor or None,
            language=language or None,
            auto_routed=None if not auto else auto == "yes",
        )
    except ValueError as error:
        problems.append(str(error))
        page = store.list_desk(desk, Status(status), PAGE_SIZE)
    counts = store.desk_counts().of(desk)
    filters = {"status": status, "language": language, "auto": auto}
    next_url = None
    if page.next_cursor:
        next_url = str(request.url.include_query_params(cursor=page.next_cursor))
    return render(
        request,
        "queue.html",
        status_code=400 if problems else 200,
        desk=desk,
        desk_info=desk_map_of(request).desks[desk],
        counts={s.value: counts.get(s.value, 0) for s in QUEUE_STATUSES},
        page=page,
        items=[_view(item) for item in page.items],
        filters=filters,
        next_url=next_url,
        first_page=not cursor,
        problems=problems,
        suggestions=desk == desk_map_of(request).triage_desk,
        refresh_s=settings_of(request).page_refresh_s,
    )


def _view(record: InquiryRecord) -> dict[str, Any]:
    """What a page shows of an inquiry, with the decision's parts named."""
    decision = record.decision or {}
    return {"record": record, "decision": decision, "failed": "intent" not in decision}


def _inquiry_page(
    request: Request, desk: str, inquiry_id: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    store = store_of(request)
    record = store.get(inquiry_id)
    desk_map = desk_map_of(request)
    if record.desk != desk:
        raise NotFound(
            f"inquiry {record.id} is not in desk {desk!r}"
            + (f"; it is now in {record.desk!r}" if record.desk else "")
        )
    targets = [name for name in desk_map.names if name != desk]
    intents = {name: list(desk_map.desks[name].intents) for name in targets}
    return render(
        request,
        "inquiry.html",
        status_code=status_code,
        desk=desk,
        view=_view(record),
        events=store.events(record.id),
        targets=targets,
        intents=intents,
        intent_pattern=INTENT_PATTERN,
        agent=current_key(request).name,
        error=error,
    )


@router.get("/desks/{desk}/inquiries/{inquiry_id}", response_class=HTMLResponse)
def page_inquiry(request: Request, desk: str, inquiry_id: str) -> Response:
    _known_desk(request, desk)
    try:
        return _inquiry_page(request, desk, inquiry_id)
    except NotFound as error:
        return render(request, "missing.html", status_code=404, desk=desk, error=str(error))


@router.post("/desks/{desk}/inquiries/{inquiry_id}/{action}", response_class=HTMLResponse)
def page_action(request: Request, desk: str, inquiry_id: str, action: str) -> Response:
    """claim, release, resolve or reroute, from the page's buttons; then back to the inquiry
    (or, when it left this desk, to the queue) with a message saying what happened."""
    _known_desk(request, desk)
    if action not in ACTIONS:
        raise HTTPException(404, f"no action {action[:32]!r} (actions: {', '.join(ACTIONS)})")
    form: dict[str, str] = request.state.form_fields
    key = current_key(request)
    store = store_of(request)
    try:
        if action == "claim":
            store.claim(desk, inquiry_id, key.name)
            message = "Claimed: it is yours until you resolve or release it."
        elif action == "release":
            store.release(desk, inquiry_id, key.name, anyone=key.is_admin)
            message = "Released: it waits in the queue again."
        elif action == "resolve":
            note = form.get("resolution", "").strip() or None
            store.resolve(desk, inquiry_id, key.name, note[:10_000] if note else None)
            request.session["flash"] = "Resolved."
            return RedirectResponse(f"/desks/{desk}", status_code=303)
        else:
            new_label = form.get("new_intent", "").strip()
            body = RerouteRequest.model_validate(
                {
                    "to_desk": form.get("to_desk", ""),
                    "intent": new_label or form.get("intent", "").strip() or None,
                    "note": form.get("note", "").strip() or None,
                }
            )
            change = checked_reroute(desk, body, desk_map_of(request), key.name, key.is_admin)
            store.reroute(desk, inquiry_id, change)
            request.session["flash"] = f"Sent to {change.to_desk}" + (
                f" as {change.intent} (new label)"
                if change.new_intent
                else (f" as {change.intent}" if change.intent else "")
            )
            return RedirectResponse(f"/desks/{desk}", status_code=303)
    except Conflict as error:
        return _inquiry_page(request, desk, inquiry_id, str(error), 409)
    except HTTPException as error:
        return _inquiry_page(request, desk, inquiry_id, str(error.detail), error.status_code)
    except ValidationError as error:  # the reroute form's fields
        problems = "; ".join(
            f"{'.'.join(map(str, item['loc']))}: {item['msg']}"
            for item in error.errors(include_url=False, include_input=False)
        )
        return _inquiry_page(request, desk, inquiry_id, problems, 400)
    except NotFound as error:
        return render(request, "missing.html", status_code=404, desk=desk, error=str(error))
    request.session["flash"] = message
    return RedirectResponse(f"/desks/{desk}/inquiries/{inquiry_id}", status_code=303)
