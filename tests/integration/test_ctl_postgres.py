"""The state-store cases on a real PostgreSQL server (and on SQLite, side by side).

The fixture starts a throwaway server: initdb into a temporary directory (as the ``postgres``
user when run as root: PostgreSQL refuses to run as root), listening only on 127.0.0.1 at a free
port and on a Unix socket in that directory; it is stopped and removed at the end. Every test
gets a fresh database.
"""

import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))

from ctl_store_cases import StoreCases  # noqa: E402  pylint: disable=wrong-import-position

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60
SUPERUSER = "goship"
DATABASE_NUMBERS = itertools.count(1)


def pg_bin() -> Path:
    found = sorted(Path("/").glob(PG_BIN_GLOB.lstrip("/")))
    if not found or not (found[-1] / "initdb").exists():
        pytest.fail("PostgreSQL server binaries not found in %s (Debian package postgresql; `make setup`)" % PG_BIN_GLOB)
    return found[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--"] + command if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_server():
    """(host, port) of a PostgreSQL server that only this test session uses."""
    binaries = pg_bin()
    root = Path(tempfile.mkdtemp(prefix="goship-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    run = {"capture_output": True, "text": True, "timeout": START_TIMEOUT_S}
    subprocess.run(as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust",
                                   "-E", "UTF8", "--no-sync"]), check=True, **run)
    options = "-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off" % (port, root)
    subprocess.run(as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                                   "-o", options, "-w", "-t", str(START_TIMEOUT_S), "start"]), check=True, **run)
    try:
        yield "127.0.0.1", port
    finally:
        subprocess.run(as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                       "-t", str(START_TIMEOUT_S), "stop"]), check=False, capture_output=True,
                       timeout=START_TIMEOUT_S)
        shutil.rmtree(root, ignore_errors=True)


class TestStoreOnBothBackends(StoreCases):
    @pytest.fixture(params=["sqlite", "postgresql"])
    def database_url(self, request, tmp_path):
        if request.param == "sqlite":
            return "sqlite:///%s" % (tmp_path / "goship.db")
        host, port = request.getfixturevalue("postgres_server")
        name = "goship_test_%d" % next(DATABASE_NUMBERS)
        with psycopg.connect(host=host, port=port, user=SUPERUSER, dbname="postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE %s" % name)
        return "postgresql+psycopg://%s@%s:%d/%s" % (SUPERUSER, host, port, name)


def test_server_listens_on_loopback_only(postgres_server):
    host, port = postgres_server
    with psycopg.connect(host=host, port=port, user=SUPERUSER, dbname="postgres") as connection:
        assert connection.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
