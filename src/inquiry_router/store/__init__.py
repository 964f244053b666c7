"""InquiryStore: the only code that talks to the database.

SQLite (WAL) by default, PostgreSQL when ``INQUIRY_ROUTER_DATABASE_URL`` says so; the same code
serves both. Worker claims are race-safe on both: the claiming UPDATE re-checks each row's state,
and PostgreSQL additionally skips rows other workers hold (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, create_engine, event, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..domain import Decision, Status
from . import schema
from .keys import KeyStore
from .tables import CorrectionRow, EventRow, InquiryRow, utcnow


class StoreError(Exception):
    """Base for store errors the API turns into 4xx answers."""


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    pass


class IdempotencyConflict(Conflict):
    pass


def _received_fields(
    new: NewInquiry, idempotency_key: str | None, fingerprint: str, now: datetime
) -> dict[str, Any]:
    """The columns of a new inquiry, stored as received."""
    return {
        "id": str(uuid.uuid4()),
        "created_at": now,
        "updated_at": now,
        "status": Status.RECEIVED.value,
        "idempotency_key": idempotency_key or None,
        "request_fingerprint": fingerprint,
        "attempts": 0,
        **new.__dict__,
    }


def _received_record(row: dict[str, Any]) -> InquiryRecord:
    """The record of a row just inserted as received."""
    empty = dict.fromkeys(InquiryRecord.__dataclass_fields__)
    fields = {**empty, **{k: v for k, v in row.items() if k in empty}}
    return InquiryRecord(**fields)


def _idempotency_conflict() -> IdempotencyConflict:
    # Not naming the inquiry: it may be another client's.
    return IdempotencyConflict(
        "this Idempotency-Key was already used for a different request; use a new key for a "
        "new inquiry"
    )


def _checked_id(inquiry_id: str) -> str:
    """Inquiry ids are UUIDs; anything else is no inquiry, found without asking the database
    (PostgreSQL refuses a NUL in a query, for one)."""
    try:
        return str(uuid.UUID(inquiry_id))
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"no inquiry {_shown(str(inquiry_id))}") from None


def _shown(value: str, limit: int = 64) -> str:
    """A value from a request, quoted for a message: short, with control characters escaped."""
    return repr(value[:limit]).encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class NewInquiry:
    message: str
    subject: str | None = None
    email: str | None = None
    locale: str | None = None
    channel: str | None = None
    external_id: str | None = None

    def fingerprint(self) -> str:
        payload = json.dumps(self.__dict__, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class InquiryRecord:
    id: str
    status: str
    created_at: datetime
    updated_at: datetime
    message: str
    subject: str | None
    email: str | None
    locale: str | None
    channel: str | None
    external_id: str | None
    attempts: int
    last_error: str | None
    desk: str | None
    decision: dict[str, Any] | None
    routed_at: datetime | None
    claimed_by: str | None
    claimed_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None

    @classmethod
    def of(cls, row: InquiryRow) -> InquiryRecord:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ClaimedInquiry:
    id: str
    lease_token: str
    message: str
    subject: str | None
    locale: str | None
    attempts: int


@dataclass(frozen=True)
class Reroute:
    """A desk's correction: where the inquiry should go, and (when it knows) which intent."""

    to_desk: str
    by: str
    intent: str | None = None
    new_intent: bool = False  # a label the model does not know, proposed by the desk
    note: str | None = None
    kind: str = "reroute"  # "triage" when the triage desk sends an inquiry on
    anyone: bool = False  # an admin may reroute an inquiry someone else holds


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # received, routed, claimed, released, rerouted, resolved
    actor: str | None
    desk: str | None
    data: dict[str, Any] | None


@dataclass(frozen=True)
class Correction:
    id: int
    inquiry_id: str
    created_at: datetime
    kind: str
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

    @classmethod
    def of(cls, row: CorrectionRow) -> Correction:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Page:
    items: list[InquiryRecord]
    next_cursor: str | None
    total: int


@dataclass
class DeskCounts:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def of(self, desk: str) -> dict[str, int]:
        return self.counts.get(desk, {})


def encode_cursor(created_at: datetime, inquiry_id: str) -> str:
    raw = f"{created_at.isoformat()}|{inquiry_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, inquiry_id = base64.urlsafe_b64decode(padded).decode().partition("|")
        return datetime.fromisoformat(stamp), str(uuid.UUID(inquiry_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError(
            f"invalid cursor {_shown(cursor)}; pass the next_cursor of a previous page"
        ) from None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class InquiryStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        schema.upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.keys = KeyStore(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.session() as session:
            session.execute(select(1))

    # ------------------------------------------------------------------ intake

    def add(
        self, new: NewInquiry, idempotency_key: str | None = None
    ) -> tuple[InquiryRecord, bool]:
        """Store an inquiry as received; with an idempotency key already seen, return the first
        inquiry instead (``created`` False). Committed before this returns."""
        fingerprint = new.fingerprint()
        if idempotency_key:
            existing = self._by_idempotency_key(idempotency_key, fingerprint)
            if existing is not None:
                return existing, False
        row = InquiryRow(**_received_fields(new, idempotency_key, fingerprint, utcnow()))
        try:
            with self.session() as session:
                session.add(row)
        except IntegrityError:
            # Two retries raced; the other one won. Answer with its inquiry.
            if idempotency_key:
                existing = self._by_idempotency_key(idempotency_key, fingerprint)
                if existing is not None:
                    return existing, False
            raise
        return InquiryRecord.of(row), True

    def add_many(self, news: Sequence[NewInquiry]) -> int:
        """Store many inquiries as received, in one transaction (an import, a backlog)."""
        return len(self.add_batch([(new, None) for new in news]))

    def add_batch(
        self, items: Sequence[tuple[NewInquiry, str | None]]
    ) -> list[tuple[InquiryRecord, bool] | StoreError]:
        """``add`` for many inquiries in one transaction: one commit for all. Each item gets
        its record (and whether it was created), or the error ``add`` would raise for it. A
        key another process stores meanwhile fails the whole transaction (IntegrityError):
        the caller then adds each on its own."""
        now = utcnow()
        outcomes: list[tuple[InquiryRecord, bool] | StoreError] = []
        values: list[dict[str, Any]] = []
        with self.session() as session:
            keys = sorted({key for _, key in items if key})
            seen: dict[str, tuple[InquiryRecord, str | None]] = {}
            if keys:
                for row in session.scalars(
                    select(InquiryRow).where(InquiryRow.idempotency_key.in_(keys))
                ):
                    seen[str(row.idempotency_key)] = (
                        InquiryRecord.of(row),
                        row.request_fingerprint,
                    )
            for new, key in items:
                fingerprint = new.fingerprint()
                if key and key in seen:
                    record, first = seen[key]
                    same = first == fingerprint
                    outcomes.append((record, False) if same else _idempotency_conflict())
                    continue
                fields = _received_fields(new, key, fingerprint, now)
                values.append(fields)
                record = _received_record(fields)
                if key:
                    seen[key] = (record, fingerprint)
                outcomes.append((record, True))
            if values:
                # One statement for the group (executemany), not an ORM object a row.
                session.execute(insert(InquiryRow), values)
        return outcomes

    def _by_idempotency_key(self, key: str, fingerprint: str) -> InquiryRecord | None:
        with self.session() as session:
            row = session.scalar(select(InquiryRow).where(InquiryRow.idempotency_key == key))
            if row is None:
                return None
            if row.request_fingerprint != fingerprint:
                raise _idempotency_conflict()
            return InquiryRecord.of(row)

    def get(self, inquiry_id: str) -> InquiryRecord:
        with self.session() as session:
            row = _row(session, inquiry_id)
            return InquiryRecord.of(row)

    # ------------------------------------------------------------------ worker side

    def claim_batch(
        self,
        limit: int,
        lease_seconds: float,
        max_attempts: int | None = None,
        triage_desk: str = "triage",
        share_among: int = 1,
    ) -> list[ClaimedInquiry]:
        """Lease up to ``limit`` waiting inquiries, oldest first, including any whose previous
        worker's lease ran out. Each lease counts as an attempt: an inquiry whose worker stopped
        (crashed, killed) during its last allowed attempt goes to ``triage_desk`` with the
        reason instead, so one that kills every worker leasing it stops doing so.
        ``share_among``: how many workers share the waiting inquiries; each batch takes at
        most its share of them, so that none is left with the backlog's tail alone."""
        now = utcnow()
        token = str(uuid.uuid4())
        expired = and_(
            InquiryRow.status == Status.PROCESSING.value, InquiryRow.lease_expires_at < now
        )
        claimable = or_(InquiryRow.status == Status.RECEIVED.value, expired)
        with self.session() as session:
            if max_attempts is not None:
                reason = (
                    f"processing failed {max_attempts} times: the worker stopped while routing "
                    "it (crashed or killed)"
                )
                session.execute(
                    update(InquiryRow)
                    .where(expired, InquiryRow.attempts >= max_attempts)
                    .values(
                        status=Status.ROUTED.value,
                        desk=triage_desk,
                        routed_at=now,
                        decision={"desk": triage_desk, "auto_routed": False, "reason": reason},
                        last_error="the worker stopped while routing it (crashed or killed)",
                        lease_token=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
            if share_among > 1:
                waiting = int(
                    session.scalar(select(func.count()).select_from(InquiryRow).where(claimable))
                    or 0
                )
                if not waiting:  # an idle worker's poll: one query, as without the share
                    return []
                limit = min(limit, -(-waiting // share_among))
            candidates = session.scalars(
                select(InquiryRow.id)
                .where(claimable)
                .order_by(InquiryRow.created_at, InquiryRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not candidates:
                return []
            session.execute(
                update(InquiryRow)
                .where(InquiryRow.id.in_(candidates), claimable)
                .values(
                    status=Status.PROCESSING.value,
                    lease_token=token,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    attempts=InquiryRow.attempts + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            rows = session.scalars(
                select(InquiryRow)
                .where(InquiryRow.lease_token == token)
                .order_by(InquiryRow.created_at, InquiryRow.id)
            ).all()
            return [
                ClaimedInquiry(row.id, token, row.message, row.subject, row.locale, row.attempts)
                for row in rows
            ]

    def renew_lease(self, lease_token: str, lease_seconds: float) -> int:
        """Extend a batch's lease while its worker is still at it; returns how many it holds."""
        now = utcnow()
        with self.session() as session:
            result = session.execute(
                update(InquiryRow)
                .where(
                    InquiryRow.lease_token == lease_token,
                    InquiryRow.status == Status.PROCESSING.value,
                )
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def record_decisions(
        self,
        lease_token: str,
        decisions: Sequence[tuple[str, Decision]],
        shadows: Sequence[Decision] | None = None,
    ) -> int:
        """Put each inquiry into its desk's queue; returns how many this lease still held.
        ``shadows``: the challenger's decisions for the same inquiries (shadow mode), kept
        beside the champion's."""
        now = utcnow()
        stored = 0
        with self.session() as session:
            for number, (inquiry_id, decision) in enumerate(decisions):
                shadow = shadows[number].to_dict() if shadows is not None else None
                result = session.execute(
                    update(InquiryRow)
                    .where(
                        InquiryRow.id == inquiry_id,
                        InquiryRow.lease_token == lease_token,
                        InquiryRow.status == Status.PROCESSING.value,
                    )
                    .values(
                        status=Status.ROUTED.value,
                        desk=decision.desk,
                        decision=decision.to_dict(),
                        shadow_decision=shadow,
                        routed_at=now,
                        lease_token=None,
                        lease_expires_at=None,
                        last_error=None,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                stored += result.rowcount  # type: ignore[attr-defined]
        return stored

    def release_failed(
        self,
        lease_token: str,
        inquiry_ids: Sequence[str],
        error: str,
        max_attempts: int,
        triage_desk: str,
    ) -> None:
        """A batch the pipeline could not process goes back to the pool; after ``max_attempts``
        it goes to the human triage desk with the error, never lost."""
        now = utcnow()
        with self.session() as session:
            rows = session.scalars(
                select(InquiryRow).where(
                    InquiryRow.id.in_(inquiry_ids), InquiryRow.lease_token == lease_token
                )
            ).all()
            for row in rows:
                row.lease_token = None
                row.lease_expires_at = None
                row.last_error = error[:2000]
                row.updated_at = now
                if row.attempts >= max_attempts:
                    row.status = Status.ROUTED.value
                    row.desk = triage_desk
                    row.routed_at = now
                    row.decision = {
                        "desk": triage_desk,
                        "auto_routed": False,
                        "reason": f"processing failed {row.attempts} times: {error[:500]}",
                    }
                else:
                    row.status = Status.RECEIVED.value

    # ------------------------------------------------------------------ desk side

    def desk_counts(self) -> DeskCounts:
        with self.session() as session:
            rows = session.execute(
                select(InquiryRow.desk, InquiryRow.status, func.count())
                .where(InquiryRow.desk.is_not(None))
                .group_by(InquiryRow.desk, InquiryRow.status)
            ).all()
        counts = DeskCounts()
        for desk, status, count in rows:
            counts.counts.setdefault(str(desk), {})[status] = int(count)
        return counts

    def status_counts(self) -> dict[str, int]:
        with self.session() as session:
            rows = session.execute(
                select(InquiryRow.status, func.count()).group_by(InquiryRow.status)
            ).all()
        return {status: int(count) for status, count in rows}

    def list_desk(
        self,
        desk: str,
        status: Status,
        limit: int,
        cursor: str | None = None,
        language: str | None = None,
        auto_routed: bool | None = None,
    ) -> Page:
        """A desk's queue in one status, oldest inquiry first, ``limit`` at a time; optionally
        only inquiries in one detected language, or only those routed (or not) by the model."""
        conditions = [InquiryRow.desk == desk, InquiryRow.status == status.value]
        if language is not None:
            conditions.append(InquiryRow.decision["language"].as_string() == language)
        if auto_routed is not None:
            conditions.append(InquiryRow.decision["auto_routed"].as_boolean() == auto_routed)
        with self.session() as session:
            total = session.scalar(select(func.count()).where(*conditions)) or 0
            query = select(InquiryRow).where(*conditions)
            if cursor:
                after_time, after_id = decode_cursor(cursor)
                query = query.where(
                    or_(
                        InquiryRow.created_at > after_time,
                        and_(InquiryRow.created_at == after_time, InquiryRow.id > after_id),
                    )
                )
            rows = session.scalars(
                query.order_by(InquiryRow.created_at, InquiryRow.id).limit(limit + 1)
            ).all()
        items = [InquiryRecord.of(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(items[-1].created_at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor, total=int(total))

    def _desk_row(self, session: Session, desk: str, inquiry_id: str) -> InquiryRow:
        row = _row(session, inquiry_id, for_update=True)
        if row.desk != desk:
            raise NotFound(
                f"inquiry {row.id} is not in desk {desk!r}"
                + (f" (it is in {row.desk!r})" if row.desk else f" (it is {row.status})")
            )
        return row

    def claim(self, desk: str, inquiry_id: str, agent: str) -> InquiryRecord:
        now = utcnow()
        with self.session() as session:
            row = self._desk_row(session, desk, inquiry_id)
            if row.status == Status.CLAIMED.value and row.claimed_by == agent:
                return InquiryRecord.of(row)  # claiming twice is harmless
            if row.status != Status.ROUTED.value:
                holder = f" by {row.claimed_by!r}" if row.claimed_by else ""
                raise Conflict(f"inquiry {row.id} is already {row.status}{holder}")
            row.status = Status.CLAIMED.value
            row.claimed_by = agent
            row.claimed_at = now
            row.updated_at = now
            _event(session, row.id, "claimed", agent, desk, now)
            return InquiryRecord.of(row)

    def release(
        self, desk: str, inquiry_id: str, agent: str, anyone: bool = False
    ) -> InquiryRecord:
        """Give a claim back: the inquiry waits in the desk's queue again. Only the agent who
        claimed it may, unless ``anyone`` (an admin)."""
        now = utcnow()
        with self.session() as session:
            row = self._desk_row(session, desk, inquiry_id)
            if row.status != Status.CLAIMED.value:
                raise Conflict(f"inquiry {row.id} is {row.status}, not claimed")
            if row.claimed_by != agent and not anyone:
                raise Conflict(f"inquiry {row.id} is claimed by {row.claimed_by!r}, not {agent!r}")
            _event(
                session, row.id, "released", agent, desk, now, {"was_claimed_by": row.claimed_by}
            )
            row.status = Status.ROUTED.value
            row.claimed_by = None
            row.claimed_at = None
            row.updated_at = now
            return InquiryRecord.of(row)

    def resolve(
        self, desk: str, inquiry_id: str, agent: str, resolution: str | None
    ) -> InquiryRecord:
        """Close an inquiry; it must be claimed, by this agent."""
        now = utcnow()
        with self.session() as session:
            row = self._desk_row(session, desk, inquiry_id)
            if row.status == Status.RESOLVED.value:
                raise Conflict(f"inquiry {row.id} is already resolved")
            if row.status == Status.ROUTED.value:
                raise Conflict(f"inquiry {row.id} is not claimed: claim it before resolving it")
            if row.status != Status.CLAIMED.value:
                raise Conflict(f"inquiry {row.id} is {row.status} and cannot be resolved")
            if row.claimed_by != agent:
                raise Conflict(f"inquiry {row.id} is claimed by {row.claimed_by!r}, not {agent!r}")
            row.status = Status.RESOLVED.value
            row.resolved_at = now
            row.resolution = resolution
            row.updated_at = now
            _event(session, row.id, "resolved", agent, desk, now, {"resolution": resolution})
            return InquiryRecord.of(row)

    def reroute(self, desk: str, inquiry_id: str, change: Reroute) -> InquiryRecord:
        """Send an inquiry from ``desk`` to another desk's queue, unclaimed, and record the
        correction (what the model decided, what the desk says it should have), all in one
        transaction. A claimed inquiry can be rerouted by the agent holding it (or an admin)."""
        now = utcnow()
        with self.session() as session:
            row = self._desk_row(session, desk, inquiry_id)
            if row.status == Status.RESOLVED.value:
                raise Conflict(f"inquiry {row.id} is resolved; it can no longer be rerouted")
            if (
                row.status == Status.CLAIMED.value
                and row.claimed_by != change.by
                and not (change.anyone)
            ):
                raise Conflict(
                    f"inquiry {row.id} is claimed by {row.claimed_by!r}, not {change.by!r}"
                )
            if row.status not in (Status.ROUTED.value, Status.CLAIMED.value):
                raise Conflict(f"inquiry {row.id} is {row.status} and cannot be rerouted")
            decision = row.decision or {}
            session.add(
                CorrectionRow(
                    inquiry_id=row.id,
                    created_at=now,
                    kind=change.kind,
                    message=row.message,
                    subject=row.subject,
                    language=decision.get("language"),
                    english_text=decision.get("english_text"),
                    model_intent=decision.get("intent"),
                    model_desk=decision.get("desk"),
                    model_confidence=decision.get("confidence"),
                    model_name=decision.get("model_name"),
                    model_version=decision.get("model_version"),
                    from_desk=desk,
                    corrected_desk=change.to_desk,
                    corrected_intent=change.intent,
                    new_intent=change.new_intent,
                    by=change.by,
                    note=change.note,
                )
            )
            _event(
                session,
                row.id,
                "rerouted",
                change.by,
                desk,
                now,
                {
                    "from_desk": desk,
                    "to_desk": change.to_desk,
                    "intent": change.intent,
                    "new_intent": change.new_intent,
                    "note": change.note,
                },
            )
            row.desk = change.to_desk
            row.status = Status.ROUTED.value
            row.claimed_by = None
            row.claimed_at = None
            row.updated_at = now
            return InquiryRecord.of(row)

    # ------------------------------------------------------------------ history

    def desks_of(self, inquiry_id: str) -> tuple[InquiryRecord, set[str]]:
        """An inquiry and every desk it is or was in (routed there, or rerouted from)."""
        with self.session() as session:
            row = _row(session, inquiry_id)
            desks = {desk for desk in (row.desk, (row.decision or {}).get("desk")) if desk}
            desks.update(
                str(desk)
                for desk in session.scalars(
                    select(EventRow.desk).where(
                        EventRow.inquiry_id == row.id, EventRow.desk.is_not(None)
                    )
                )
            )
            return InquiryRecord.of(row), desks

    def events(self, inquiry_id: str) -> list[Event]:
        """What happened to an inquiry, oldest first: received and routed (read off the
        inquiry), then what desks did."""
        with self.session() as session:
            row = _row(session, inquiry_id)
            history = [Event(row.created_at, "received", None, None, {"channel": row.channel})]
            if row.routed_at is not None:
                decision = row.decision or {}
                first_desk = decision.get("desk")
                history.append(
                    Event(
                        row.routed_at,
                        "routed",
                        None,
                        first_desk,
                        {
                            "model_name": decision.get("model_name"),
                            "model_version": decision.get("model_version"),
                            "intent": decision.get("intent"),
                            "confidence": decision.get("confidence"),
                            "auto_routed": decision.get("auto_routed"),
                            "reason": decision.get("reason"),
                        },
                    )
                )
            for event in session.scalars(
                select(EventRow).where(EventRow.inquiry_id == row.id).order_by(EventRow.id)
            ):
                history.append(Event(event.at, event.kind, event.actor, event.desk, event.data))
            return history

    def weekly(self, since: datetime) -> list[Week]:
        """Week by week since ``since`` (weeks start on Monday, UTC): inquiries routed, how
        many the model routed itself, how many went to triage, and how many of those it
        routed itself a desk later corrected (the routed error rate, measured)."""
        with self.session() as session:
            routed = session.execute(
                select(
                    InquiryRow.id,
                    InquiryRow.routed_at,
                    InquiryRow.decision["auto_routed"].as_boolean(),
                ).where(InquiryRow.routed_at >= since)
            ).all()
            corrected = {
                str(inquiry_id)
                for (inquiry_id,) in session.execute(
                    select(CorrectionRow.inquiry_id).where(CorrectionRow.created_at >= since)
                )
            }
        weeks: dict[datetime, list[int]] = {}
        for inquiry_id, routed_at, auto in routed:
            start = (routed_at - timedelta(days=routed_at.weekday())).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            counts = weeks.setdefault(start, [0, 0, 0])
            counts[0] += 1
            if auto:
                counts[1] += 1
                counts[2] += inquiry_id in corrected
        return [
            Week(start, total, auto, total - auto, wrong)
            for start, (total, auto, wrong) in sorted(weeks.items())
        ]

    def shadow_pairs(self, since: datetime | None = None) -> list[ShadowPair]:
        """Every inquiry scored in shadow mode, with its latest correction's desk."""
        with self.session() as session:
            query = select(InquiryRow).where(InquiryRow.shadow_decision.is_not(None))
            if since is not None:
                query = query.where(InquiryRow.created_at >= since)
            rows = session.scalars(query.order_by(InquiryRow.created_at)).all()
            corrected: dict[str, str] = {}
            ids = [row.id for row in rows]
            for start in range(0, len(ids), 500):
                for inquiry_id, desk in session.execute(
                    select(CorrectionRow.inquiry_id, CorrectionRow.corrected_desk)
                    .where(CorrectionRow.inquiry_id.in_(ids[start : start + 500]))
                    .order_by(CorrectionRow.id)
                ):
                    corrected[str(inquiry_id)] = str(desk)
            return [
                ShadowPair(
                    row.id,
                    row.status,
                    row.desk,
                    row.decision or {},
                    row.shadow_decision or {},
                    corrected.get(row.id),
                )
                for row in rows
            ]

    def corrections(
        self,
        limit: int | None = 100,
        after: int = 0,
        since: datetime | None = None,
        desk: str | None = None,
    ) -> list[Correction]:
        """Corrections desks made, oldest first: ``limit`` (None: all) after the one numbered
        ``after``; only those made at or after ``since``, or involving ``desk`` (from or to)."""
        query = select(CorrectionRow).where(CorrectionRow.id > after)
        if since is not None:
            query = query.where(CorrectionRow.created_at >= since)
        if desk is not None:
            query = query.where(
                or_(CorrectionRow.from_desk == desk, CorrectionRow.corrected_desk == desk)
            )
        query = query.order_by(CorrectionRow.id)
        if limit is not None:
            query = query.limit(limit)
        with self.session() as session:
            return [Correction.of(row) for row in session.scalars(query).all()]


@dataclass(frozen=True)
class Week:
    start: datetime  # Monday, 00:00 UTC
    routed: int
    auto_routed: int
    to_triage: int
    auto_routed_corrected: int  # routed by the model, then corrected by a desk

    @property
    def triage_rate(self) -> float:
        return self.to_triage / self.routed if self.routed else 0.0

    @property
    def routed_error_rate(self) -> float:
        return self.auto_routed_corrected / self.auto_routed if self.auto_routed else 0.0


@dataclass(frozen=True)
class ShadowPair:
    """An inquiry both models scored (shadow mode), and what the desks made of it."""

    inquiry_id: str
    status: str
    desk: str | None  # where it is now
    decision: dict[str, Any]  # the champion's, which routed it
    shadow: dict[str, Any]  # the challenger's
    corrected_desk: str | None  # the latest correction's desk, when a desk corrected it


def _row(session: Session, inquiry_id: str, for_update: bool = False) -> InquiryRow:
    """The inquiry's row, or NotFound naming the id."""
    inquiry_id = _checked_id(inquiry_id)
    row = session.get(InquiryRow, inquiry_id, with_for_update=for_update)
    if row is None:
        raise NotFound(f"no inquiry {inquiry_id!r}")
    return row


def _event(
    session: Session,
    inquiry_id: str,
    kind: str,
    actor: str,
    desk: str,
    at: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        EventRow(inquiry_id=inquiry_id, at=at, kind=kind, actor=actor, desk=desk, data=data)
    )
