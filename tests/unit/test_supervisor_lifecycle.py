"""guest_init's own life around the apps: initial spec from the config drive or the state
dir, and stopping the apps in dependency order when it shuts down."""

import os
import shutil
import tempfile

import pytest
from ansible_collections.goship.core.plugins.module_utils import nocloud_seed

from supervisor_helpers import all_ready, alive, pids, process_app, replicas, supervised, wait_status

SLEEPER = "exec sleep 300"


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="gs-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_seed(path, generation, apps):
    files = nocloud_seed.build_seed_files("iid-1", "vm1", goship={"project": "p", "node": "n1", "generation": generation, "apps": apps})
    nocloud_seed.write_iso(path, files)


@pytest.mark.skipif(not nocloud_seed.HAS_PYCDLIB, reason="pycdlib is not installed")
def test_config_drive_gives_the_initial_spec_unless_the_persisted_one_is_newer(workdir):
    seed = os.path.join(workdir, "seed.iso")
    write_seed(seed, 3, [process_app("from-seed", SLEEPER, replicas=2)])
    with supervised(config=seed, directory=workdir) as (process, channel):
        status = wait_status(channel, all_ready("from-seed"))
        assert status["generation"] == 3 and len(replicas(status, "from-seed")) == 2
        channel.request("apply", {"generation": 5, "apps": [process_app("from-host", SLEEPER)]})
        wait_status(channel, lambda s: list(s["apps"]) == ["from-host"] and all_ready("from-host")(s))
    with supervised(config=seed, directory=workdir) as (process, channel):  # seed (3) older than state (5)
        status = wait_status(channel, all_ready("from-host"))
        assert status["generation"] == 5 and list(status["apps"]) == ["from-host"]
    write_seed(seed, 6, [process_app("newer-seed", SLEEPER)])
    with supervised(config=seed, directory=workdir) as (process, channel):
        status = wait_status(channel, all_ready("newer-seed"))
        assert status["generation"] == 6 and list(status["apps"]) == ["newer-seed"]


def test_shutdown_stops_apps_in_reverse_dependency_order(workdir):
    events = os.path.join(workdir, "events")

    def app(name, **fields):
        script = 'trap "echo $GOSHIP_APP >> %s; exit 0" TERM; while :; do sleep 0.05; done' % events
        return process_app(name, script, stop_grace_s=3, **fields)
    with supervised(directory=workdir) as (process, channel):
        channel.request("apply", {"generation": 1, "apps": [
            app("web", depends_on=["api"]), app("db"), app("api", depends_on=["db", "cache"]), app("cache")]})
        status = wait_status(channel, all_ready("web", "db", "api", "cache"))
        everyone = [pid for name in status["apps"] for pid in pids(status, name)]
    assert process.proc.returncode == 0
    assert not any(alive(pid) for pid in everyone)
    with open(events, encoding="ascii") as handle:
        order = handle.read().split()
    assert order[0] == "web" and order[1] == "api" and sorted(order[2:]) == ["cache", "db"], order
    assert "stopping apps: web then api then cache,db" in process.log()
