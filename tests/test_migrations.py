"""The schema comes from Alembic migrations: a database the product made before it had them
upgrades in place with every inquiry kept, on SQLite and PostgreSQL; and the tables the code
declares are exactly what the migrations build."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
)

from inquiry_router.store import InquiryStore, schema
from inquiry_router.store.tables import Base

from .conftest import run_cli

# The inquiries table exactly as `Base.metadata.create_all` made it before migrations
# (the product up to 2026-12-01), frozen here so the upgrade is tested against it.
_BEFORE = MetaData()
_INQUIRIES_BEFORE = Table(
    "inquiries",
    _BEFORE,
    Column("id", String(36), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("subject", String(500)),
    Column("email", String(320)),
    Column("locale", String(35)),
    Column("channel", String(64)),
    Column("external_id", String(255)),
    Column("idempotency_key", String(255), unique=True),
    Column("request_fingerprint", String(64)),
    Column("attempts", Integer, nullable=False),
    Column("lease_token", String(36)),
    Column("lease_expires_at", DateTime),
    Column("last_error", Text),
    Column("desk", String(64)),
    Column("decision", JSON),
    Column("routed_at", DateTime),
    Column("claimed_by", String(255)),
    Column("claimed_at", DateTime),
    Column("resolved_at", DateTime),
    Column("resolution", Text),
    Index("ix_inquiries_status_created", "status", "created_at"),
    Index("ix_inquiries_desk_status_created", "desk", "status", "created_at", "id"),
)


def _old_rows(count: int) -> list[dict[str, object]]:
    stamp = datetime(2026, 11, 30, 9, 0, 0)
    rows = []
    for number in range(count):
        status = ["received", "routed", "claimed", "resolved"][number % 4]
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "created_at": stamp,
                "updated_at": stamp,
                "status": status,
                "message": f"Mi tarjeta no llega ({number}) <b>ñ</b>",
                "subject": None if number % 2 else "Tarjeta",
                "email": f"sender{number}@example.com",
                "locale": "es-ES",
                "channel": "web",
                "external_id": None,
                "idempotency_key": f"form-{number}",
                "request_fingerprint": "f" * 64,
                "attempts": 1,
                "lease_token": None,
                "lease_expires_at": None,
                "last_error": None,
                "desk": None if status == "received" else "cards",
                "decision": None if status == "received" else {"desk": "cards", "intent": "x"},
                "routed_at": None if status == "received" else stamp,
                "claimed_by": "alice" if status in ("claimed", "resolved") else None,
                "claimed_at": stamp if status in ("claimed", "resolved") else None,
                "resolved_at": stamp if status == "resolved" else None,
                "resolution": "sent a new one" if status == "resolved" else None,
            }
        )
    return rows


def test_a_database_from_before_migrations_upgrades_in_place(database_url: str) -> None:
    engine = create_engine(database_url)
    _BEFORE.create_all(engine)
    rows = _old_rows(40)
    with engine.begin() as connection:
        connection.execute(insert(_INQUIRIES_BEFORE), rows)
    engine.dispose()

    store = InquiryStore(database_url)  # every start upgrades
    try:
        assert schema.current(store.engine) == schema.head()
        for row in rows:
            record = store.get(str(row["id"]))
            for field in ("status", "message", "subject", "email", "desk", "resolution"):
                assert getattr(record, field) == row[field], field
            assert record.decision == row["decision"]
        # The new tables work on the upgraded database.
        key, token = store.keys.create("Alice", desk="cards")
        assert store.keys.authenticate(token) == store.keys.get(key.id)
        routed = next(row for row in rows if row["status"] == "routed")
        assert [e.kind for e in store.events(str(routed["id"]))] == ["received", "routed"]
    finally:
        store.close()
    again = InquiryStore(database_url)  # and a second start changes nothing
    assert sum(again.status_counts().values()) == len(rows)
    again.close()


def test_the_tables_the_code_declares_are_what_the_migrations_build(database_url: str) -> None:
    store = InquiryStore(database_url)
    try:
        with store.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == [], f"a schema change without a migration: {differences}"
        tables = set(inspect(store.engine).get_table_names())
        assert {"inquiries", "api_keys", "inquiry_events", "corrections"} <= tables
    finally:
        store.close()


def test_db_commands_upgrade_by_hand_and_say_the_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    _BEFORE.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(_INQUIRIES_BEFORE), _old_rows(3))
    engine.dispose()
    env = {"INQUIRY_ROUTER_DATABASE_URL": url}
    before = run_cli(tmp_path, "db", "current", env=env)
    assert f"database: 0001; latest: {schema.head()}" in before.stdout
    upgraded = run_cli(tmp_path, "db", "upgrade", env=env)
    assert f"from 0001 to revision {schema.head()}" in upgraded.stdout
    again = run_cli(tmp_path, "db", "upgrade", env=env)
    assert "the latest" in again.stdout
    store = InquiryStore(url)
    assert sum(store.status_counts().values()) == 3
    store.close()
