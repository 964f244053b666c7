"""Request and response schemas, per noun: ``InquiryCreate`` in, ``InquiryPublic`` out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ..domain import Status

MAX_MESSAGE_CHARS = 10_000
LOCALE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


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


StoredText = Annotated[str, AfterValidator(_storable)]
VisibleText = Annotated[str, AfterValidator(_storable), AfterValidator(_visible)]


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


class InquiryText(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    message: VisibleText = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    subject: StoredText | None = Field(default=None, max_length=500)
    locale: str | None = Field(default=None, max_length=35, pattern=LOCALE_PATTERN)

    @field_validator("subject", "locale", mode="before")
    @classmethod
    def _optional_blank(cls, value: Any) -> Any:
        return _blank_to_none(value)


class InquiryCreate(InquiryText):
    email: StoredText | None = Field(default=None, max_length=320, pattern=EMAIL_PATTERN)
    channel: StoredText | None = Field(default=None, max_length=64)
    external_id: StoredText | None = Field(default=None, max_length=255)

    @field_validator("email", "channel", "external_id", mode="before")
    @classmethod
    def _optional_blank_more(cls, value: Any) -> Any:
        return _blank_to_none(value)


class InquiryAccepted(BaseModel):
    id: str
    status: Status
    status_url: str


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


class FailedDecision(BaseModel):
    """What an inquiry that failed every processing attempt carries: it waits in triage."""

    model_config = ConfigDict(extra="forbid")

    desk: str = Field(description="the triage desk")
    auto_routed: bool = Field(description="always false")
    reason: str = Field(description="'processing failed N times: ' and the last error")


class InquiryPublic(BaseModel):
    id: str
    status: Status
    created_at: datetime
    updated_at: datetime
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
    routed_at: datetime | None
    claimed_by: str | None
    claimed_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    attempts: int
    last_error: str | None

    @field_validator(
        "created_at", "updated_at", "routed_at", "claimed_at", "resolved_at", mode="after"
    )
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Stored as naive UTC (SQLite has no zones); say so on the way out.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


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
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    agent: VisibleText = Field(min_length=1, max_length=255, description="who takes the inquiry")


class ResolveRequest(ClaimRequest):
    resolution: VisibleText | None = Field(default=None, max_length=10_000)

    @field_validator("resolution", mode="before")
    @classmethod
    def _optional_blank(cls, value: Any) -> Any:
        return _blank_to_none(value)
