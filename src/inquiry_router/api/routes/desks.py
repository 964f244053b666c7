"""Desk queues: list desks with counts, page through a queue, claim and resolve inquiries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from ...domain import Status
from ...routing import DeskMap
from ..body import BODY_ERRORS, body_schema, json_body
from ..deps import DeskMapDep, HolderDep, StoreDep
from ..schemas import (
    ClaimRequest,
    DeskList,
    DeskPage,
    DeskSummary,
    InquiryPublic,
    Problem,
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
    404: {"model": Problem, "description": "no such desk, or no such inquiry in it"},
    409: {
        "model": Problem,
        "description": "someone else holds it, or it is not in a state to do this",
    },
}


@router.post(
    "/{desk}/inquiries/{inquiry_id}/claim",
    response_model=InquiryPublic,
    responses=_MISSING_OR_TAKEN,
    openapi_extra=body_schema(ClaimRequest, form=False),
)
def claim_inquiry(
    desk: str,
    inquiry_id: str,
    body: Annotated[ClaimRequest, Depends(json_body(ClaimRequest))],
    store: StoreDep,
    desk_map: DeskMapDep,
) -> InquiryPublic:
    _known(desk, desk_map)
    record = store.claim(desk, inquiry_id, body.agent)
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
    body: Annotated[ResolveRequest, Depends(json_body(ResolveRequest))],
    store: StoreDep,
    desk_map: DeskMapDep,
) -> InquiryPublic:
    _known(desk, desk_map)
    record = store.resolve(desk, inquiry_id, body.agent, body.resolution)
    return InquiryPublic.model_validate(record, from_attributes=True)
