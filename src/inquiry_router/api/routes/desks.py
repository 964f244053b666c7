"""Desk queues: list desks with counts, page through a queue, claim and resolve inquiries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from ...domain import Status
from ...routing import DeskMap
from ...store import Reroute
from ..auth import current_key
from ..body import BODY_ERRORS, body_schema, json_body
from ..deps import DeskMapDep, HolderDep, StoreDep
from ..schemas import (
    ClaimRequest,
    DeskList,
    DeskPage,
    DeskSummary,
    InquiryPublic,
    Problem,
    ReleaseRequest,
    RerouteRequest,
    ResolveRequest,
)

router = APIRouter(prefix="/v1/desks", tags=["desks"])


def _known(desk: str, desk_map: DeskMap) -> str:
    if desk not in desk_map.desks:
        raise HTTPException(404, f"no desk {desk[:64]!r} (desks: {', '.join(desk_map.names)})")
    return desk


@router.get("", response_model=DeskList)
def list_desks(store: StoreDep, desk_map: DeskMapDep, holder: HolderDep) -> DeskList:
    counts = store.desk_counts()
    router = holder.current().router if holder.ready else None
    return DeskList(
        desks=[
            DeskSummary(
                name=desk.name,
                description=desk.description,
                threshold=router.threshold_for(desk.name) if router else desk.threshold,
                foreign_threshold=(
                    router.threshold_for(desk.name, foreign=True) if router else desk.threshold
                ),
                is_triage=desk.name == desk_map.triage_desk,
                counts={
                    status.value: counts.of(desk.name).get(status.value, 0)
                    for status in (Status.ROUTED, Status.CLAIMED, Status.RESOLVED)
                },
            )
            for desk in desk_map.desks.values()
        ]
    )


@router.get(
    "/{desk}/inquiries",
    response_model=DeskPage,
    responses={
        400: {"model": Problem, "description": "the cursor is not one this API gave"},
        404: {"model": Problem, "description": "no such desk"},
    },
)
def desk_queue(
    desk: str,
    request: Request,
    store: StoreDep,
    desk_map: DeskMapDep,
    status: Annotated[Status, Query(description="routed (waiting), claimed or resolved")] = (
        Status.ROUTED
    ),
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> DeskPage:
    """A desk's queue, oldest first."""
    _known(desk, desk_map)
    if status in (Status.RECEIVED, Status.PROCESSING):
        raise HTTPException(422, f"status {status.value!r} is not in any desk's queue yet")
    try:
        page = store.list_desk(desk, status, limit, cursor)
    except ValueError as error:
        raise HTTPException(400, str(error)) from None
    next_url = None
    if page.next_cursor:
        next_url = str(
            request.url.include_query_params(
                cursor=page.next_cursor, limit=limit, status=status.value
            )
        )
    return DeskPage(
        desk=desk,
        status=status,
        total=page.total,
        items=[InquiryPublic.model_validate(item, from_attributes=True) for item in page.items],
        next_cursor=page.next_cursor,
        next_url=next_url,
    )


_MISSING_OR_TAKEN: dict[int | str, dict[str, Any]] = {
    **BODY_ERRORS,
    400: {"model": Problem, "description": "the body is not valid JSON, or the reroute is not"},
    404: {"model": Problem, "description": "no such desk, or no such inquiry in it"},
    409: {
        "model": Problem,
        "description": "someone else holds it, or it is not in a state to do this",
    },
}


def _agent(request: Request, body: ClaimRequest) -> str:
    return body.agent or current_key(request).name


@router.post(
    "/{desk}/inquiries/{inquiry_id}/claim",
    response_model=InquiryPublic,
    responses=_MISSING_OR_TAKEN,
    openapi_extra=body_schema(ClaimRequest, form=False),
)
def claim_inquiry(
    desk: str,
    inquiry_id: str,
    request: Request,
    body: Annotated[ClaimRequest, Depends(json_body(ClaimRequest, empty_allowed=True))],
    store: StoreDep,
    desk_map: DeskMapDep,
) -> InquiryPublic:
    """Take an inquiry from the desk's queue: no one else can resolve it while you hold it."""
    _known(desk, desk_map)
    record = store.claim(desk, inquiry_id, _agent(request, body))
    return InquiryPublic.model_validate(record, from_attributes=True)


@router.post(
    "/{desk}/inquiries/{inquiry_id}/release",
    response_model=InquiryPublic,
    responses=_MISSING_OR_TAKEN,
    openapi_extra=body_schema(ReleaseRequest, form=False),
)
def release_inquiry(
    desk: str,
    inquiry_id: str,
    request: Request,
    body: Annotated[ReleaseRequest, Depends(json_body(ReleaseRequest, empty_allowed=True))],
    store: StoreDep,
    desk_map: DeskMapDep,
) -> InquiryPublic:
    """Give a claim back: the inquiry waits in the queue again (an admin may release anyone's)."""
    _known(desk, desk_map)
    key = current_key(request)
    record = store.release(desk, inquiry_id, _agent(request, body), anyone=key.is_admin)
    return InquiryPublic.model_validate(record, from_attributes=True)


@router.post(
    "/{desk}/inquiries/{inquiry_id}/resolve",
    response_model=InquiryPublic,
    responses=_MISSING_OR_TAKEN,
    openapi_extra=body_schema(ResolveRequest, form=False),
)
def resolve_inquiry(
    desk: str,
    inquiry_id: str,
    request: Request,
    body: Annotated[ResolveRequest, Depends(json_body(ResolveRequest, empty_allowed=True))],
    store: StoreDep,
    desk_map: DeskMapDep,
) -> InquiryPublic:
    """Close an inquiry you have claimed, with a note of what was done."""
    _known(desk, desk_map)
    record = store.resolve(desk, inquiry_id, _agent(request, body), body.resolution)
    return InquiryPublic.model_validate(record, from_attributes=True)


def checked_reroute(
    desk: str, body: RerouteRequest, desk_map: DeskMap, agent: str, admin: bool
) -> Reroute:
    """The reroute a desk asks for, checked against desks.yaml; a 400 naming the problem."""
    to_desk = body.to_desk
    if to_desk not in desk_map.desks:
        raise HTTPException(
            400, f"no desk {to_desk[:64]!r} to reroute to (desks: {', '.join(desk_map.names)})"
        )
    if to_desk == desk:
        raise HTTPException(400, f"the inquiry is already in desk {desk!r}; choose another desk")
    new_intent = False
    if body.intent is not None:
        handler = desk_map.desk_for(body.intent)
        if to_desk == desk_map.triage_desk:
            raise HTTPException(400, f"the triage desk {to_desk!r} takes no intents; leave it out")
        if handler is not None and handler != to_desk:
            raise HTTPException(
                400, f"intent {body.intent!r} is handled by desk {handler!r}, not {to_desk!r}"
            )
        new_intent = handler is None
    return Reroute(
        to_desk=to_desk,
        by=agent,
        intent=body.intent,
        new_intent=new_intent,
        note=body.note,
        kind="triage" if desk == desk_map.triage_desk else "reroute",
        anyone=admin,
    )


@router.post(
    "/{desk}/inquiries/{inquiry_id}/reroute",
    response_model=InquiryPublic,
    responses=_MISSING_OR_TAKEN,
    openapi_extra=body_schema(RerouteRequest, form=False),
)
def reroute_inquiry(
    desk: str,
    inquiry_id: str,
    request: Request,
    body: Annotated[RerouteRequest, Depends(json_body(RerouteRequest))],
    store: StoreDep,
    desk_map: DeskMapDep,
) -> InquiryPublic:
    """Send an inquiry to the desk it belongs to, unclaimed, and record the correction the
    next model learns from. The intent, when given, is one the target desk handles, or a new
    label (recorded as new)."""
    _known(desk, desk_map)
    key = current_key(request)
    change = checked_reroute(desk, body, desk_map, _agent(request, body), key.is_admin)
    record = store.reroute(desk, inquiry_id, change)
    return InquiryPublic.model_validate(record, from_attributes=True)
