"""Intake: web forms and API clients post inquiries; nothing is acknowledged before it is stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ...domain import InquiryText as PipelineInput
from ...store import NewInquiry
from ..body import BODY_ERRORS, body_schema, parse_body
from ..deps import IntakeDep, PipelineDep, SettingsDep, StoreDep
from ..schemas import (
    CorrectionList,
    CorrectionPublic,
    DecisionPublic,
    EventList,
    EventPublic,
    InquiryAccepted,
    InquiryCreate,
    InquiryPublic,
    InquiryStatus,
    InquiryText,
    Problem,
)

router = APIRouter(prefix="/v1", tags=["inquiries"])


def status_url(request: Request, settings: SettingsDep, inquiry_id: str) -> str:
    """Where the client follows the inquiry: under the configured public address; else the
    request's own address when its host is one the service answers to; else a relative URL.
    A forged Host header is never sent back as a link."""
    path = str(request.app.url_path_for("get_inquiry", inquiry_id=inquiry_id))
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + path
    allowed = {host.strip().lower() for host in settings.allowed_hosts.split(",") if host.strip()}
    if (request.url.hostname or "").lower() in allowed:
        return str(request.base_url).rstrip("/") + path
    return path


@router.post(
    "/inquiries",
    status_code=202,
    response_model=InquiryAccepted,
    openapi_extra=body_schema(InquiryCreate),
    responses={
        **BODY_ERRORS,
        409: {"model": Problem, "description": "Idempotency-Key reused for a different request"},
    },
)
async def create_inquiry(
    request: Request,
    response: Response,
    intake: IntakeDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> InquiryAccepted:
    """Store an inquiry; a worker routes it. Retrying with the same ``Idempotency-Key`` returns
    the first inquiry instead of creating another."""
    body = await parse_body(request, InquiryCreate, settings)
    new = NewInquiry(**body.model_dump())
    # Stored by the intake writer, off the event loop and in one commit with whatever else
    # arrived meanwhile; answered only once committed.
    record, created = await intake.add(new, idempotency_key)
    url = status_url(request, settings, record.id)
    response.headers["Location"] = url
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return InquiryAccepted(id=record.id, status=record.status, status_url=url)  # type: ignore[arg-type]


@router.get(
    "/inquiries/{inquiry_id}",
    response_model=InquiryPublic | InquiryStatus,
    responses={404: {"model": Problem, "description": "no such inquiry"}},
)
def get_inquiry(
    inquiry_id: str, request: Request, store: StoreDep
) -> InquiryPublic | InquiryStatus:
    """Without a key, the status only; with a key of a desk it is or was in (or an admin key),
    the inquiry and its routing decision."""
    record = store.get(inquiry_id)
    if not request.state.full_view:
        return InquiryStatus(id=record.id, status=record.status)  # type: ignore[arg-type]
    return InquiryPublic.model_validate(record, from_attributes=True)


@router.get(
    "/inquiries/{inquiry_id}/events",
    response_model=EventList,
    responses={404: {"model": Problem, "description": "no such inquiry"}},
)
def inquiry_events(inquiry_id: str, store: StoreDep) -> EventList:
    """What happened to the inquiry, oldest first: received, routed (model version, desk,
    reason), then claimed, released, rerouted (from, to, by, note) and resolved."""
    events = store.events(inquiry_id)
    return EventList(
        inquiry_id=inquiry_id,
        events=[EventPublic.model_validate(event, from_attributes=True) for event in events],
    )


@router.get("/corrections", response_model=CorrectionList, tags=["corrections"])
def list_corrections(
    store: StoreDep,
    after: Annotated[
        int, Query(ge=0, le=2**31 - 1, description="next_after of the previous page")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CorrectionList:
    """The corrections desks made (reroutes and triage assignments), oldest first: what the
    next model learns from."""
    items = store.corrections(limit=limit, after=after)
    return CorrectionList(
        items=[CorrectionPublic.model_validate(item, from_attributes=True) for item in items],
        next_after=items[-1].id if len(items) == limit else None,
    )


@router.post(
    "/classify",
    response_model=DecisionPublic,
    openapi_extra=body_schema(InquiryText),
    tags=["classify"],
    responses={**BODY_ERRORS, 503: {"model": Problem, "description": "the model is loading"}},
)
async def classify(
    request: Request, pipeline: PipelineDep, settings: SettingsDep
) -> DecisionPublic:
    """The routing decision for a text, computed now and stored nowhere."""
    body = await parse_body(request, InquiryText, settings)
    # The model is CPU-bound: run it off the event loop so intake keeps answering meanwhile.
    decision = await run_in_threadpool(
        pipeline.run_one, PipelineInput(body.message, body.subject, body.locale)
    )
    return DecisionPublic.model_validate(decision.to_dict())
