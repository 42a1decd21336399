"""Validation of apply arguments, in process: field paths in errors, defaults, hashing."""

import json

import pytest

from guest_init.supervisor import spec as specs
from guest_init.supervisor.backoff import Backoff
from guest_init.supervisor.logbuf import LogBuffer

SECRET = "hunter2-secret"


def app(**fields):
    return {"name": "web", "runtime": "process", "image": "/", "command": ["sleep", "1"], **fields}


def error_of(apps, generation=1):
    with pytest.raises(specs.SpecError) as caught:
        specs.parse_apply(generation, apps)
    return str(caught.value)


def test_defaults_and_normalization():
    desired = specs.parse_apply(7, [{"name": "api", "image": "demo-web"}])
    (api,) = desired.apps
    assert (api.runtime, api.replicas, api.restart, api.stop_grace_s) == ("crun", 1, "always", 10.0)
    assert api.liveness is None and api.readiness is None and api.ports == ()
    document = json.loads(desired.document())
    assert document["generation"] == 7 and document["apps"][0]["name"] == "api"
    assert specs.parse_apply(7, document["apps"]).apps == desired.apps  # the persisted form round-trips


@pytest.mark.parametrize("apps, field", [
    ([app(replicas=-1)], "apps[0].replicas"),
    ([app(replicas=True)], "apps[0].replicas"),
    ([app(name="-web")], "apps[0].name"),
    ([app(), app()], "apps[1].name"),
    ([app(runtime="docker")], "apps[0].runtime"),
    ([app(image="relative/dir")], "apps[0].image"),
    ([app(command=None)], "apps[0].command"),
    ([app(command=["ok", 3])], "apps[0].command[1]"),
    ([app(env={"1BAD": "x"})], "apps[0].env.1BAD"),
    ([app(env={"GOSHIP_APP": "x"})], "apps[0].env.GOSHIP_APP"),
    ([app(env={"PORT": "1"}, ports=[80])], "apps[0].env.PORT"),
    ([app(env={"K": {"value": 5, "secret": True}})], "apps[0].env.K.value"),
    ([app(env={"K": {"value": "v", "secret": "yes"}})], "apps[0].env.K.secret"),
    ([app(user="root")], "apps[0].user"),
    ([app(workdir="tmp")], "apps[0].workdir"),
    ([app(restart="sometimes")], "apps[0].restart"),
    ([app(ports=[80, 80])], "apps[0].ports"),
    ([app(ports=[65535], replicas=2)], "apps[0].replicas"),
    ([app(health={"liveness": {"tcp": {}, "interval_s": 1}})], "apps[0].health.liveness.tcp.port"),
    ([app(health={"readiness": {"exec": ["true"], "http": {"port": 80}}})], "apps[0].health.readiness"),
    ([app(health={"readiness": {"http": {"port": 80, "path": "no-slash"}}})], "apps[0].health.readiness.http.path"),
    ([app(health={"readiness": {"exec": ["true"], "failure_threshold": 0}})], "apps[0].health.readiness.failure_threshold"),
    ([app(health={"startup_grace_s": -1})], "apps[0].health.startup_grace_s"),
    ([app(resources={"memory_mib": 0})], "apps[0].resources.memory_mib"),
    ([app(resources={"gpus": 1})], "apps[0].resources.gpus"),
    ([app(depends_on=["nope"])], "apps[0].depends_on[0]"),
    ([app(name="a", depends_on=["b"]), app(name="b", depends_on=["a"])], "apps[0].depends_on"),
    ([app(stop_grace_s="5")], "apps[0].stop_grace_s"),
    ([app(colour="red")], "apps[0].colour"),
    (["web"], "apps[0]"),
])
def test_errors_name_the_field(apps, field):
    message = error_of(apps)
    assert message.startswith(field + ":"), message


def test_generation_must_be_a_natural_number():
    assert error_of([], generation=-1).startswith("generation:")


def test_secret_values_never_reach_a_message():
    message = error_of([app(env={"TOKEN": {"value": SECRET, "secret": True}, "bad name": "x"})])
    assert SECRET not in message and message.startswith("apps[0].env.bad name")


def test_hash_ignores_fields_changed_in_place():
    base = specs.parse_apply(1, [app()]).apps[0]
    for same in (app(replicas=5), app(restart="never"), app(stop_grace_s=1), app(depends_on=[])):
        assert specs.parse_apply(1, [same]).apps[0].spec_hash == base.spec_hash
    for different in (app(command=["sleep", "2"]), app(env={"A": "1"}), app(resources={"pids": 5}), app(ports=[80]),
                      app(env={"A": {"value": "1", "secret": True}})):
        assert specs.parse_apply(1, [different]).apps[0].spec_hash != base.spec_hash


def test_backoff_is_immediate_then_doubles_to_a_cap_and_resets_after_a_stable_run():
    backoff = Backoff()
    delays = [backoff.record_exit(0.1) for _attempt in range(12)]
    assert delays[:5] == [0.0, 0.2, 0.4, 0.8, 1.6] and delays[-1] == 30.0
    assert backoff.exhausted()
    assert backoff.record_exit(60.0) == 0.0 and not backoff.exhausted()


def test_log_buffer_masks_secrets_keeps_partial_lines_and_stays_bounded():
    buffer = LogBuffer(max_bytes=2000)
    buffer.secrets = [SECRET]
    buffer.feed("stdout", b"token=hunter2-")
    buffer.feed("stdout", b"secret ok\npartial")
    assert [text for ts, stream, text in buffer.tail(10)] == ["token=******** ok"]
    buffer.close_stream("stdout")
    assert buffer.tail(1)[0][1:] == ("stdout", "partial")
    for number in range(200):
        buffer.feed("stderr", b"line %d\n" % number)
    lines = buffer.tail(1000)
    assert lines[-1][2] == "line 199" and len(lines) < 100
