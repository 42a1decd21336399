"""Open the store: create the engine, bring the schema to the newest migration.

SQLite runs in WAL mode with foreign keys on. Write transactions (``sessions.begin()``) start
with ``BEGIN IMMEDIATE``: writers queue on the database lock (``busy_timeout``) instead of
failing half-way when two transactions both try to upgrade a read lock. Reads
(``sessions()``) start a deferred transaction: under WAL they never wait for a writer, and
never make one wait (SQLite's busy handler sleeps in steps of up to 100 ms). PostgreSQL serializes the
scheduler with a transaction-scoped advisory lock (``lock_scheduler``).
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15000
SQLITE_POOL_SIZE = 40
SCHEDULER_LOCK_KEY = 0x60511B  # any constant shared by every control service process
WRITE_OPTION = "goship_write"  # execution option of the engine that write sessions use


def open_engine(url: str) -> Engine:
    """An engine on ``url`` with the schema migrated to head."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed.database)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return engine


class StoreSessions(sessionmaker):
    """``sessions()`` for reads, ``sessions.begin()`` for writes (an ``IMMEDIATE`` one on SQLite)."""

    def __init__(self, engine: Engine):
        super().__init__(engine, expire_on_commit=False)
        self._writes = sessionmaker(engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)

    def begin(self):
        return self._writes.begin()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return StoreSessions(engine)


def migrate(engine: Engine, revision: str = "head") -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def lock_scheduler(session: Session) -> None:
    """Serialize placement decisions across processes (SQLite already is: BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEDULER_LOCK_KEY})


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:":
        directory = Path(database).parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The store holds token hashes and app secrets: owner only.
        fd = os.open(database, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
    # As many pooled connections as the API has worker threads (anyio's default, 40): beyond the
    # pool, each request would open a connection and run the PRAGMAs below again.
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                           pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):  # pylint: disable=unused-argument
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below decide
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=%d" % SQLITE_BUSY_TIMEOUT_MS)
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE_OPTION)
                                   else "BEGIN")

    return engine
