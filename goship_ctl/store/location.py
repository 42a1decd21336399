"""Where the store lives: a database URL, or SQLite in the data directory."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA_DIR = Path("/var/lib/goship/ctl")
DATA_DIR_ENV = "GOSHIP_DATA_DIR"
DATABASE_URL_ENV = "GOSHIP_DATABASE_URL"
SQLITE_FILE = "goship.db"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """``--data-dir``, else ``$GOSHIP_DATA_DIR``, else /var/lib/goship/ctl."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def database_url(explicit_url: str | None = None, explicit_data_dir: str | os.PathLike | None = None) -> str:
    """``--database-url``, else ``$GOSHIP_DATABASE_URL``, else SQLite ``<data dir>/goship.db``."""
    url = explicit_url or os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    return "sqlite:///" + str(data_dir(explicit_data_dir).absolute() / SQLITE_FILE)
