"""Helpers for the goship.core.goship inventory tests: the plugin loaded as Ansible loads it,
a real HTTP server on 127.0.0.1 standing in for the control service, and ansible-inventory runs."""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "inventory"
COLLECTIONS_ROOT = REPO_ROOT / "build" / "collections"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
API_PATH = "/api/v1/desired-state"
CLI_TIMEOUT_S = 120
SOURCE_ENV = ("GOSHIP_URL", "GOSHIP_TOKEN")


def fixture_document():
    return yaml.safe_load((FIXTURES / "desired-state.yml").read_text())


def load_plugin():
    """A fresh goship.core.goship from Ansible's plugin loader (options and doc fragments resolved)."""
    from ansible.plugins.loader import inventory_loader  # pylint: disable=import-outside-toplevel
    _install_collection_finder()
    return inventory_loader.get("goship.core.goship")


def _install_collection_finder():
    """ansible-inventory installs Ansible's collection finder at start-up; tests do it once here.

    Modules imported from ansible_collections as a plain namespace package before (other test
    files do that) would make the finder refuse the collection, so they are dropped first.
    """
    from ansible.plugins.loader import init_plugin_loader  # pylint: disable=import-outside-toplevel
    from ansible.utils.collection_loader import AnsibleCollectionConfig  # pylint: disable=import-outside-toplevel
    if AnsibleCollectionConfig.collection_finder is not None:
        return
    for name in [name for name in sys.modules if name == "ansible_collections" or name.startswith("ansible_collections.")]:
        del sys.modules[name]
    init_plugin_loader([str(COLLECTIONS_ROOT)])


def parse(config_path, cache=False):
    """The InventoryData the plugin builds from one configuration file."""
    from ansible.inventory.data import InventoryData  # pylint: disable=import-outside-toplevel
    from ansible.parsing.dataloader import DataLoader  # pylint: disable=import-outside-toplevel
    inventory = InventoryData()
    load_plugin().parse(inventory, DataLoader(), str(config_path), cache=cache)
    return inventory


def write_state_source(directory, document, config_extra=""):
    """A state file holding ``document`` and a .goship.yml pointing at it; returns the config path."""
    (directory / "state.yml").write_text(yaml.safe_dump(document))
    config = directory / "test.goship.yml"
    config.write_text("plugin: goship.core.goship\nstate_file: state.yml\n" + config_extra)
    return config


def run_ansible(tool, args, env_extra=None, cwd=None):
    """Run an Ansible CLI from the venv with goship.core on the collections path."""
    env = {key: value for key, value in os.environ.items() if key not in SOURCE_ENV}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT), ANSIBLE_NOCOLOR="1", NO_PROXY="127.0.0.1")
    env.update(env_extra or {})
    return subprocess.run(
        [str(VENV_BIN / tool), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
    )


def inventory_list(config_path, env_extra=None, extra_args=()):
    """``ansible-inventory --list`` as parsed JSON; fails the test when the command fails."""
    result = run_ansible(
        "ansible-inventory", ["--list", "-i", str(config_path), *extra_args],
        env_extra={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "1", **(env_extra or {})},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class DesiredStateServer:
    """A real HTTP server on 127.0.0.1 that answers every GET as told and records the requests.

    Set ``status``, ``body`` (bytes), ``redirect_to`` (a URL) or ``delay_s`` before the request.
    """

    def __init__(self):
        self.status = 200
        self.body = b""
        self.redirect_to = None
        self.delay_s = 0.0
        self.requests = []  # (path, headers) per request
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def serve_document(self, document):
        self.status, self.body = 200, json.dumps(document).encode()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append((self.path, dict(self.headers)))
                time.sleep(server.delay_s)
                if server.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", server.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                """Quiet: pytest shows failures, not access logs."""

        return Handler
