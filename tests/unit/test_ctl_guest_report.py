"""The recorder against hostile or odd guest status (the guest is untrusted by the host), on a real
SQLite store: it never raises, bounds what it stores, strips control and format characters from
text that `get`/`describe` print, and says "guest reported malformed status" on the VM."""

import math
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ctl_helpers import ADMIN, project, service_with_nodes
from ctl_store_cases import guest_status_vm
from goship_ctl.reconciler.guest_report import (INT32_MAX, INT64_MAX, MAX_APPS, MAX_ERROR_CHARS, MAX_MESSAGE_CHARS,
                                                MAX_REPLICA_ROWS, clean_text)
from goship_ctl.reconciler.recorder import ActualStateRecorder
from goship_ctl.reconciler.trigger import PendingNodes
from goship_ctl.spec.project import MAX_REPLICAS
from goship_ctl.store.models import ReplicaState, VmState

NODE = "node1"
MALFORMED = "guest reported malformed status: "
ESCAPES = "\x1b[2J\x1b]0;owned\x07\x1b[31mred\x9b1m\u202eevil\u200b\ud800\ue000\x00"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    service = service_with_nodes("sqlite:///%s" % (tmp_path_factory.mktemp("store") / "goship.db"), count=1)
    service.apply_project(ADMIN, project(placement={"nodes": 1}))
    yield service, ActualStateRecorder(service.sessions, PendingNodes())
    service.close()


def record(world, *vms):
    service, recorder = world
    recorder.guest_status(NODE, list(vms))
    with service.sessions() as session:
        return list(session.scalars(select(VmState))), list(session.scalars(select(ReplicaState)))


def with_status(status, **fields):
    return dict(guest_status_vm(NODE), status=status, **fields)


def replica(**fields):
    return with_status({"generation": 1, "apps": {"web": {"replicas": [dict({"index": 0, "state": "ready"}, **fields)]}}})


def assert_clean(text, limit):
    assert isinstance(text, str) and len(text) <= limit
    assert not [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co")], repr(text)


def test_a_well_formed_report_is_stored_as_is(world):
    [vm], replicas = record(world, guest_status_vm(NODE))
    assert (vm.state, vm.observed_generation, vm.message) == ("running", 1, "")
    assert [(r.app, r.replica, r.state, r.restarts, r.health, r.cpu_seconds) for r in replicas] == [
        ("web", 0, "ready", 0, "passing", 1.5), ("web", 1, "ready", 1, "passing", 1.5)]


@pytest.mark.parametrize("status, problem", [
    ([], "status is a list, not an object"),
    ("ready", "status is a string, not an object"),
    (7, "status is a number, not an object"),
    ({"generation": -1}, "generation: a number is not a count"),
    ({"generation": 2 ** 40}, "generation: a number is not a count"),
    ({"generation": True}, "generation: a boolean is not a count"),
    ({"generation": "1"}, "generation: a string is not a count"),
    ({"apps": ["web"]}, "apps is a list, not an object"),
    ({"apps": "web"}, "apps is a string, not an object"),
    ({"apps": {"web": "running"}}, "apps.web: not an object with a list of replicas"),
    ({"apps": {"web": {"replicas": "0"}}}, "apps.web: not an object with a list of replicas"),
    ({"apps": {"Web\x1b[0m": {"replicas": []}}}, "an app name is not a DNS label"),
    ({"apps": {"web": {"replicas": [None]}}}, "apps.web.replicas[0]: null, not an object"),
    ({"apps": {"web": {"replicas": [[0]]}}}, "apps.web.replicas[0]: a list, not an object"),
])
def test_malformed_shapes_are_noted_on_the_vm(world, status, problem):
    [vm], replicas = record(world, with_status(status))
    assert vm.state == "running" and replicas == []
    assert vm.message == MALFORMED + problem


@pytest.mark.parametrize("fields, problem", [
    ({"index": "0"}, "index: not a new replica number below 256"),
    ({"index": True}, "index: not a new replica number below 256"),
    ({"index": -1}, "index: not a new replica number below 256"),
    ({"index": MAX_REPLICAS}, "index: not a new replica number below 256"),
    ({"index": 2 ** 70}, "index: not a new replica number below 256"),
])
def test_replicas_without_a_valid_index_are_dropped(world, fields, problem):
    [vm], replicas = record(world, replica(**fields))
    assert replicas == [] and vm.message == MALFORMED + "apps.web.replicas[0]." + problem


@pytest.mark.parametrize("fields, column, stored", [
    ({"restarts": -5}, "restarts", 0), ({"restarts": 2 ** 40}, "restarts", 0), ({"restarts": 1.5}, "restarts", 0),
    ({"restarts": "3"}, "restarts", 0), ({"exit_code": 2 ** 40}, "exit_code", None),
    ({"exit_code": False}, "exit_code", None), ({"memory_bytes": -1}, "memory_bytes", None),
    ({"memory_bytes": 2 ** 64}, "memory_bytes", None), ({"cpu_usec": math.nan}, "cpu_seconds", None),
    ({"cpu_usec": math.inf}, "cpu_seconds", None), ({"cpu_usec": -1}, "cpu_seconds", None),
    ({"cpu_usec": "1"}, "cpu_seconds", None), ({"state": "\x1b[31mready"}, "state", "unknown"),
    ({"state": "r" * 33}, "state", "unknown"), ({"state": 1}, "state", "unknown"),
])
def test_bad_replica_fields_are_dropped_but_the_replica_kept(world, fields, column, stored):
    [vm], [row] = record(world, replica(**fields))
    assert getattr(row, column) == stored
    assert vm.message.startswith(MALFORMED + "apps.web.replicas[0].")


def test_text_loses_escapes_and_is_bounded(world):
    giant = ESCAPES + "x" * (8 << 20)
    [vm], [row] = record(world, replica(last_error=giant, health={"http": {"status": ["failing"]}}),)
    assert_clean(row.last_error, MAX_ERROR_CHARS)
    assert row.last_error.startswith("[2J]0;owned[31mred1mevil") and row.health == "passing"
    [vm] = record(world, dict(guest_status_vm(NODE), reachable=False, status=None, error="guest said: " + giant))[0]
    assert_clean(vm.message, MAX_MESSAGE_CHARS)
    assert vm.state == "unresponsive" and vm.message.startswith("guest said: [2J")
    assert clean_text("a\tb\nc\r\x00d", 10) == "a b c d" and clean_text(["x"], 10) == ""


def test_counts_are_bounded(world):
    many_apps = {"a%d" % i: {"replicas": [{"index": 0, "state": "ready"}]} for i in range(MAX_APPS + 50)}
    [vm], replicas = record(world, with_status({"apps": many_apps}))
    assert len(replicas) == MAX_APPS and vm.message == MALFORMED + "%d apps, only the first %d kept" % (MAX_APPS + 50, MAX_APPS)
    wide = {"a%d" % i: {"replicas": [{"index": n, "state": "ready"} for n in range(MAX_REPLICAS)]} for i in range(20)}
    [vm], replicas = record(world, with_status({"apps": wide}))
    assert len(replicas) == MAX_REPLICA_ROWS and "more than %d replicas, the rest ignored" % MAX_REPLICA_ROWS in vm.message
    dupes = [{"index": 0, "state": "ready"}, {"index": 0, "state": "failed"}] * 3
    [vm], replicas = record(world, with_status({"apps": {"web": {"replicas": dupes}}}))
    assert [(r.replica, r.state) for r in replicas] == [(0, "ready")]
    assert vm.message.endswith("(+2 more)")


def test_unknown_fields_are_ignored(world):
    vm = guest_status_vm(NODE)
    vm["status"]["future"] = {"x": [1, 2]}
    vm["status"]["apps"]["web"]["scale_hint"] = 3
    vm["status"]["apps"]["web"]["replicas"][0]["gpu"] = "0000:01:00.0"
    [row], replicas = record(world, vm, {"project": 5}, "vm", None, dict(guest_status_vm(NODE), domain="x" * 500))
    assert row.message == "" and row.domain == "goship-node1-alpha" and len(replicas) == 2


def test_entries_without_a_valid_project_are_skipped(world):
    assert record(world, *[dict(guest_status_vm(NODE), project=name) for name in ("../x", "A" * 100, None, ["alpha"])]) == ([], [])
    assert record(world, "not a VM", 3) == ([], [])
    world[1].guest_status(NODE, {"vms": "not a list"})


def test_the_service_views_show_the_note(world):
    record(world, replica(last_error=ESCAPES, restarts=-1))
    service = world[0]
    [vm] = service.list_vms(ADMIN)
    assert vm["message"] == MALFORMED + "apps.web.replicas[0].restarts: a number out of range"
    [instance] = service.get_project(ADMIN, "alpha")["status"]["apps"][0]["instances"]
    assert instance["lastError"] == "[2J]0;owned[31mred1mevil" and instance["restarts"] == 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 80), max_value=2 ** 80) | st.floats()
    | st.text(max_size=40) | st.sampled_from(["web", "ready", "\x1b[31m", "\ud800", "a" * 70]),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["web", "api", "index", "state", "replicas", "restarts", "exit_code", "health", "status",
                         "last_error", "cpu_usec", "memory_bytes", "generation", "apps", "x\x1b"]) | st.text(max_size=8),
        inner, max_size=6),
    max_leaves=30)
REPLICA = st.fixed_dictionaries({}, optional={
    "index": st.integers(-2, 300) | JSON, "state": st.sampled_from(["ready", "running", "failed"]) | JSON,
    "restarts": JSON, "exit_code": JSON, "health": JSON, "last_error": JSON, "cpu_usec": JSON, "memory_bytes": JSON})
STATUS = JSON | st.fixed_dictionaries({}, optional={
    "generation": JSON,
    "apps": JSON | st.dictionaries(st.sampled_from(["web", "api", "Bad"]) | st.text(max_size=5),
                                   JSON | st.fixed_dictionaries({"replicas": st.lists(REPLICA | JSON, max_size=6)}),
                                   max_size=4)})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(status=STATUS, error=JSON, active=JSON, reachable=JSON)
def test_random_shapes_never_break_the_recorder(world, status, error, active, reachable):
    vms, replicas = record(world, dict(guest_status_vm(NODE), status=status, error=error, active=active, reachable=reachable))
    [vm] = vms
    assert vm.state in ("running", "shut-off", "unresponsive")
    assert vm.observed_generation is None or 0 <= vm.observed_generation <= INT32_MAX
    assert_clean(vm.message, MAX_MESSAGE_CHARS)
    assert len(replicas) <= MAX_REPLICA_ROWS
    for row in replicas:
        assert 0 <= row.replica < MAX_REPLICAS and 0 <= row.restarts <= INT32_MAX
        assert row.exit_code is None or -INT32_MAX - 1 <= row.exit_code <= INT32_MAX
        assert row.memory_bytes is None or 0 <= row.memory_bytes <= INT64_MAX
        assert row.cpu_seconds is None or math.isfinite(row.cpu_seconds)
        assert_clean(row.last_error, MAX_ERROR_CHARS)
        assert_clean(row.state, 32) and row.health in (None, "passing", "failing", "unknown")
