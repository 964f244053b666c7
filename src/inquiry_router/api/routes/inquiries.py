"""Intake: web forms and API clients post inquiries; nothing is acknowledged before it is stored."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ...domain import InquiryText as PipelineInput
from ...store import NewInquiry
from ..deps import PipelineDep, StoreDep
from ..schemas import (
    DecisionPublic,
    InquiryAccepted,
    InquiryCreate,
    InquiryPublic,
    InquiryText,
)

router = APIRouter(prefix="/v1", tags=["inquiries"])

MAX_BODY_BYTES = 64 * 1024
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }


async def parse_body(request: Request, model: type[BaseModel]) -> Any:
    """JSON or an HTML form's fields, validated by ``model``; errors name the field."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"request body over {MAX_BODY_BYTES} bytes")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data: Any
    if content_type == "application/json":
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise HTTPException(413, f"request body over {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise HTTPException(400, f"request body is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise HTTPException(422, "request body must be a JSON object")
    elif content_type in FORM_TYPES:
        form = await request.form()
        # An HTML form also posts its buttons and hidden fields: keep only the fields we know.
        data = {
            key: value
            for key, value in form.items()
            if key in model.model_fields and isinstance(value, str)
        }
    else:
        raise HTTPException(
            415,
            f"unsupported Content-Type {content_type or '(none)'!r}; "
            "send application/json or application/x-www-form-urlencoded",
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(
            error.errors(include_url=False, include_context=False)
        ) from None


@router.post(
    "/inquiries",
    status_code=202,
    response_model=InquiryAccepted,
    openapi_extra=_body_schema(InquiryCreate),
    responses={409: {"description": "Idempotency-Key reused for a different request"}},
)
async def create_inquiry(
    request: Request,
    response: Response,
    store: StoreDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> InquiryAccepted:
    """Store an inquiry; a worker routes it. Retrying with the same ``Idempotency-Key`` returns
    the first inquiry instead of creating another."""
    body: InquiryCreate = await parse_body(request, InquiryCreate)
    new = NewInquiry(**body.model_dump())
    record, created = store.add(new, idempotency_key=idempotency_key)
    status_url = str(request.url_for("get_inquiry", inquiry_id=record.id))
    response.headers["Location"] = status_url
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return InquiryAccepted(id=record.id, status=record.status, status_url=status_url)  # type: ignore[arg-type]


@router.get(
    "/inquiries/{inquiry_id}",
    response_model=InquiryPublic,
    responses={404: {"description": "no such inquiry"}},
)
def get_inquiry(inquiry_id: str, store: StoreDep) -> InquiryPublic:
    """Status and, once routed, the full routing decision."""
    record = store.get(inquiry_id)
    return InquiryPublic.model_validate(record, from_attributes=True)


@router.post(
    "/classify",
    response_model=DecisionPublic,
    openapi_extra=_body_schema(InquiryText),
    tags=["classify"],
    responses={503: {"description": "the model is still loading"}},
)
async def classify(request: Request, pipeline: PipelineDep) -> DecisionPublic:
    """The routing decision for a text, computed now and stored nowhere."""
    body: InquiryText = await parse_body(request, InquiryText)
    # The model is CPU-bound: run it off the event loop so intake keeps answering meanwhile.
    decision = await run_in_threadpool(
        pipeline.run_one, PipelineInput(body.message, body.subject, body.locale)
    )
    return DecisionPublic.model_validate(decision.to_dict())
