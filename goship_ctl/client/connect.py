"""Choose the backend: the API when a URL is configured, else the embedded store.

Each backend is imported only when chosen: the HTTP client needs no database layer, the
embedded store no HTTP client, and the CLI starts faster for it.
"""

from __future__ import annotations

import os

from goship_ctl.store.location import database_url

URL_ENV, TOKEN_ENV, CA_CERT_ENV = "GOSHIP_URL", "GOSHIP_TOKEN", "GOSHIP_CA_CERT"


def open_backend(args):
    """``args`` carries ``url``, ``data_dir`` and ``database_url`` (see goship_ctl.commands.common)."""
    # pylint: disable=import-outside-toplevel
    url = args.url or os.environ.get(URL_ENV)
    if url:
        from goship_ctl.client.http import HttpBackend
        return HttpBackend(url, os.environ.get(TOKEN_ENV), os.environ.get(CA_CERT_ENV))
    from goship_ctl.client.local import LocalBackend
    from goship_ctl.service.control import ControlService
    return LocalBackend(ControlService.open(database_url(args.database_url, args.data_dir)))
