"""The state store on SQLite (WAL) in a real file; tests/integration/test_ctl_postgres.py runs the
same cases on a real PostgreSQL server."""

import sqlite3
import time

import pytest
from sqlalchemy import text

from ctl_helpers import ADMIN, project, service_with_nodes
from ctl_store_cases import StoreCases
from goship_ctl.store.location import DATA_DIR_ENV, DATABASE_URL_ENV, database_url


class TestSqliteStore(StoreCases):
    @pytest.fixture
    def database_url(self, tmp_path):
        return "sqlite:///%s" % (tmp_path / "data" / "goship.db")


def test_sqlite_file_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "ctl" / "goship.db"
    service = service_with_nodes("sqlite:///%s" % path)
    service.apply_project(ADMIN, project())
    service.close()
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == ("0004",)


def test_store_survives_reopening(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "goship.db")
    service_with_nodes(url).apply_project(ADMIN, project())
    reopened = service_with_nodes(url)
    assert reopened.get_project(ADMIN, "alpha")["status"]["generation"] == 1


def test_location_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert database_url() == "sqlite:////var/lib/goship/ctl/goship.db"
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert database_url() == "sqlite:///%s/goship.db" % tmp_path
    assert database_url(explicit_data_dir="/srv/x") == "sqlite:////srv/x/goship.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql+psycopg://db/goship")
    assert database_url(explicit_data_dir="/srv/x") == "postgresql+psycopg://db/goship"
    assert database_url("sqlite:////elsewhere.db") == "sqlite:////elsewhere.db"


def test_reads_do_not_wait_for_a_writer(tmp_path):
    """Reads start deferred transactions: with a write transaction open elsewhere, an API read
    (token check included) answers at once instead of sleeping in SQLite's busy handler."""
    service = service_with_nodes("sqlite:///%s" % (tmp_path / "goship.db"))
    service.apply_project(ADMIN, project())
    token = service.create_token(ADMIN, "reader", None)["token"]
    service.authenticate(token)  # its last use is noted now: the next one only reads
    with service.sessions.begin() as writer:
        writer.execute(text("UPDATE projects SET generation = generation + 1"))
        started = time.monotonic()
        principal = service.authenticate(token)
        assert service.get_project(principal, "alpha")["status"]["generation"] == 1
        assert time.monotonic() - started < 1.0
    assert service.get_project(principal, "alpha")["status"]["generation"] == 2
