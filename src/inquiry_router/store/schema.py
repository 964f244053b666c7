"""The database schema comes from Alembic migrations (``migrations/versions``), applied at every
start and by ``inquiry-router db upgrade``. A database the product created before it had
migrations (an ``inquiries`` table, no ``alembic_version``) is taken as revision 0001 and
upgraded in place."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

log = logging.getLogger(__name__)
logging.getLogger("alembic").setLevel(logging.WARNING)  # one line of ours says what changed

MIGRATIONS = Path(__file__).with_name("migrations")
BEFORE_MIGRATIONS = "0001"  # the schema `create_all` made before there were migrations


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def current(engine: Engine) -> str | None:
    """The database's revision: None when empty, 0001 when made before migrations."""
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        if revision is None and inspect(connection).has_table("inquiries"):
            return BEFORE_MIGRATIONS
        return revision


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the database to ``revision``; returns (before, after). Safe when several processes
    start at once: PostgreSQL serialises them on an advisory lock; on SQLite a process that
    lost the race finds the work done."""
    try:
        return _upgrade(engine, revision)
    except Exception:
        if engine.dialect.name != "sqlite" or current(engine) != head():
            raise
        return head(), head()


def _upgrade(engine: Engine, revision: str) -> tuple[str | None, str | None]:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7734561)"))
        before = MigrationContext.configure(connection).get_current_revision()
        tables = inspect(connection)
        if before is None and tables.has_table("inquiries"):
            log.info(
                "database created before migrations: taking it as revision %s", BEFORE_MIGRATIONS
            )
            command.stamp(_config(connection), BEFORE_MIGRATIONS)
            before = BEFORE_MIGRATIONS
        if before != head() or revision != "head":
            command.upgrade(_config(connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "empty", after)
    return before, after
