"""Request and response schemas, per noun: ``InquiryCreate`` in, ``InquiryPublic`` out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from ..domain import Status

MAX_MESSAGE_CHARS = 10_000
LOCALE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
# Spelled out, not \s: regular expression engines (Python's, Rust's in pydantic, ECMA's in
# OpenAPI clients) disagree on what \s covers. These are what Python's str.strip() removes.
_WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INVISIBLE_CLASS = r"\u00ad\u180e\u200b-\u200d\u2060\ufeff"
EMAIL_PATTERN = rf"^[^@\x00{_WHITESPACE}]+@[^@\x00{_WHITESPACE}]+\.[^@\x00{_WHITESPACE}]+$"


# Characters that show nothing: a message made only of these says nothing.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff"))


def _storable(value: str) -> str:
    """Text both databases store as it is: PostgreSQL refuses NUL, and a lone surrogate is not
    Unicode at all (JSON's "\\ud800" without its pair)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains an unpaired surrogate, which is not valid Unicode") from None
    return value


def _visible(value: str) -> str:
    if not value.translate(_INVISIBLE).strip():
        raise ValueError("has no visible characters")
    return value


# The same rules for the OpenAPI document (ECMA regex), so that clients and generated tests
# know them; the validators above say what was wrong in plain words.
_NO_NUL = r"^[^\x00]*$"
_SOME_VISIBLE = rf"^[^\x00]*[^\x00{_WHITESPACE}{_INVISIBLE_CLASS}][^\x00]*$"


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _as_utc(value: datetime) -> datetime:
    # Stored as naive UTC (SQLite has no zones); say so on the way out.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcTime = Annotated[datetime, AfterValidator(_as_utc)]


def stored_text(max_length: int) -> Any:
    """A text field both databases store as written, as a type for a schema."""
    return Annotated[
        str,
        Field(max_length=max_length),
        AfterValidator(_storable),
        WithJsonSchema({"type": "string", "maxLength": max_length, "pattern": _NO_NUL}),
    ]


def visible_text(max_length: int) -> Any:
    """A text field that must say something: at least one visible character."""
    return Annotated[
        str,
        Field(min_length=1, max_length=max_length),
        AfterValidator(_storable),
        AfterValidator(_visible),
        WithJsonSchema(
            {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": _SOME_VISIBLE}
        ),
    ]


EmailText = Annotated[
    str,
    Field(max_length=320, pattern=EMAIL_PATTERN),
    AfterValidator(_storable),
    WithJsonSchema({"type": "string", "maxLength": 320, "pattern": EMAIL_PATTERN}),
]


_BLANK = rf"^[{_WHITESPACE}]*$"


def _blank_is_absent(schema: dict[str, Any]) -> None:
    """In the OpenAPI document: an optional text field may also be blank, which counts as
    absent (an HTML form posts its empty fields)."""
    for field in schema.get("properties", {}).values():
        options = field.get("anyOf")
        if options and {"type": "null"} in options and field.get("title") != "Message":
            options.append({"type": "string", "pattern": _BLANK})


class InquiryText(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_blank_is_absent
    )

    message: visible_text(MAX_MESSAGE_CHARS)  # type: ignore[valid-type]
    subject: stored_text(500) | None = None  # type: ignore[valid-type]
    locale: str | None = Field(default=None, max_length=35, pattern=LOCALE_PATTERN)

    @field_validator("subject", "locale", mode="before")
    @classmethod
    def _optional_blank(cls, value: Any) -> Any:
        return _blank_to_none(value)


class InquiryCreate(InquiryText):
    email: EmailText | None = None
    channel: stored_text(64) | None = None  # type: ignore[valid-type]
    external_id: stored_text(255) | None = None  # type: ignore[valid-type]

    @field_validator("email", "channel", "external_id", mode="before")
    @classmethod
    def _optional_blank_more(cls, value: Any) -> Any:
        return _blank_to_none(value)


class InquiryAccepted(BaseModel):
    id: str
    status: Status
    status_url: str


class DeskScorePublic(BaseModel):
    desk: str
    confidence: float = Field(description="the sum of the desk's intents' probabilities")


class DecisionPublic(BaseModel):
    """Everything the pipeline decided about one inquiry, and why."""

    language: str = Field(description="ISO 639-1 code detected, or 'und' (undetermined)")
    language_confidence: float
    language_source: str = Field(description="text, locale (the form's locale decided) or none")
    english_text: str = Field(description="what the classifier read: the text, or its English")
    translated: bool
    translation_engine: str | None = Field(
        description="passthrough (read as written), an engine's name, or null (not translated)"
    )
    translation_engine_version: str | None
    translation_note: str | None = Field(description="why it was not translated, if it was not")
    intent: str
    confidence: float = Field(description="calibrated probability of the intent")
    runner_up: str | None
    runner_up_confidence: float | None
    desk: str = Field(description="the desk it was routed to: its best desk, or triage")
    desk_confidence: float = Field(description="the best desk's probability (its intents' sum)")
    auto_routed: bool = Field(description="false: sent to triage for a person to decide")
    reason: str = Field(description="the numbers behind the decision")
    model_name: str
    model_version: str
    desk_candidates: list[DeskScorePublic] = Field(
        default=[], description="the most likely desks (triage aside), best first"
    )


class FailedDecision(BaseModel):
    """What an inquiry that failed every processing attempt carries: it waits in triage."""

    model_config = ConfigDict(extra="forbid")

    desk: str = Field(description="the triage desk")
    auto_routed: bool = Field(description="always false")
    reason: str = Field(description="'processing failed N times: ' and the last error")


class InquiryPublic(BaseModel):
    id: str
    status: Status
    created_at: UtcTime
    updated_at: UtcTime
    message: str
    subject: str | None
    email: str | None
    locale: str | None
    channel: str | None
    external_id: str | None
    desk: str | None
    decision: DecisionPublic | FailedDecision | None = Field(
        description="once routed: the decision; after every attempt failed: the failure"
    )
    routed_at: UtcTime | None
    claimed_by: str | None
    claimed_at: UtcTime | None
    resolved_at: UtcTime | None
    resolution: str | None
    attempts: int
    last_error: str | None


class DeskSummary(BaseModel):
    name: str
    description: str
    threshold: float | None = Field(description="desk confidence needed; null while loading")
    foreign_threshold: float | None = Field(
        default=None,
        description=(
            "desk confidence needed for text in languages the model was not trained on "
            "(not English, usually); null while loading"
        ),
    )
    is_triage: bool
    counts: dict[str, int]


class DeskList(BaseModel):
    desks: list[DeskSummary]


class DeskPage(BaseModel):
    desk: str
    status: Status
    total: int
    items: list[InquiryPublic]
    next_cursor: str | None
    next_url: str | None


class ClaimRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, json_schema_extra=_blank_is_absent
    )

    agent: visible_text(255) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="who works on it; default: the key's name. Claim, release, resolve and "
        "reroute must name the same agent",
    )

    @field_validator("agent", mode="before")
    @classmethod
    def _optional_agent(cls, value: Any) -> Any:
        return _blank_to_none(value)


class ReleaseRequest(ClaimRequest):
    pass


class ResolveRequest(ClaimRequest):
    resolution: visible_text(10_000) | None = None  # type: ignore[valid-type]

    @field_validator("resolution", mode="before")
    @classmethod
    def _optional_blank(cls, value: Any) -> Any:
        return _blank_to_none(value)


INTENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class RerouteRequest(ClaimRequest):
    to_desk: visible_text(64) = Field(description="the desk it belongs to")  # type: ignore[valid-type]
    intent: str | None = Field(
        default=None,
        pattern=INTENT_PATTERN,
        description="the right intent: one the target desk handles in desks.yaml, or a new "
        "label (letters, digits, _ . -), recorded as new",
    )
    note: visible_text(2000) | None = None  # type: ignore[valid-type]

    @field_validator("intent", "note", mode="before")
    @classmethod
    def _optional_blank(cls, value: Any) -> Any:
        return _blank_to_none(value)


class InquiryStatus(BaseModel):
    """What anyone holding an inquiry's id may see: its status, without a key."""

    id: str
    status: Status


class EventPublic(BaseModel):
    at: UtcTime
    kind: str = Field(description="received, routed, claimed, released, rerouted or resolved")
    actor: str | None = Field(description="the agent (null for the service itself)")
    desk: str | None
    data: dict[str, Any] | None = Field(
        description="routed: model, intent, confidence, reason; rerouted: from_desk, to_desk, "
        "intent, new_intent, note; resolved: resolution"
    )


class EventList(BaseModel):
    inquiry_id: str
    events: list[EventPublic]


class CorrectionPublic(BaseModel):
    id: int
    inquiry_id: str
    created_at: UtcTime
    kind: str = Field(description="reroute, or triage (the triage desk sent it on)")
    message: str
    subject: str | None
    language: str | None
    english_text: str | None
    model_intent: str | None
    model_desk: str | None
    model_confidence: float | None
    model_name: str | None
    model_version: str | None
    from_desk: str
    corrected_desk: str
    corrected_intent: str | None
    new_intent: bool
    by: str
    note: str | None


class CorrectionList(BaseModel):
    items: list[CorrectionPublic]
    next_after: int | None = Field(description="pass as `after` for the next page")


class Problem(BaseModel):
    """What was wrong with a request, in words."""

    detail: str


class FieldProblem(BaseModel):
    type: str = Field(description="the rule broken, e.g. missing, string_too_long")
    loc: list[str | int] = Field(description="where: the field's name (and index)")
    msg: str = Field(description="what was wrong, in words; never the value itself")


class ValidationProblem(BaseModel):
    """Which fields were wrong, and why."""

    detail: list[FieldProblem]
