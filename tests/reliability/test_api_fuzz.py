"""API fuzzing from the OpenAPI document with schemathesis, against a real `goship-ctl serve` on
127.0.0.1 with an admin token: for every operation, data that fits the schema (positive) and
data that does not (negative): no response is a 5xx, and every documented response matches its
schema. Bounded: FUZZ_SETTINGS examples per operation and mode.

The strategies are used with plain hypothesis (``APIOperation.as_strategy``) rather than
schemathesis' pytest plugin, whose lazy fixture loader does not run under pytest 9.
"""

import shutil
import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from ctl_helpers import node, project
from ctl_server import CtlServer

FUZZ_SETTINGS = settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def ctl_server():
    directory = tempfile.mkdtemp(prefix="goship-api-fuzz-")
    server = CtlServer(directory).start()
    for index in (1, 2):
        assert server.request("POST", "/api/v1/nodes", json=node("node%d" % index)).status_code in (200, 201)
    assert server.request("POST", "/api/v1/projects", json=project("alpha")).status_code == 201
    yield server
    alive = server.proc.poll() is None
    server.stop()
    log = server.log()
    shutil.rmtree(directory, ignore_errors=True)
    assert alive, "goship-ctl serve died:\n" + log[-4000:]
    assert "Traceback" not in log, log[-6000:]


@pytest.fixture(scope="module")
def operations(ctl_server):
    schema = schemathesis.openapi.from_url(ctl_server.url + "/api/v1/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 20, [op.label for op in found]
    return found


def fuzz(operation, mode, server):
    """Run one operation's cases; return the first failure (as text) or None."""
    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        case.call_and_validate(base_url=server.url, headers=server.headers(), checks=CHECKS, timeout=30)
    try:
        run()
    except Unsatisfiable:
        return None  # negative mode: nothing in this operation can be made invalid (no body, free-form strings)
    except Exception as exc:  # pylint: disable=broad-except
        return "%s (%s): %s" % (operation.label, mode.value, str(exc)[:2000])
    return None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_responses_match_the_schema(operations, ctl_server, mode):
    failures = [failure for failure in (fuzz(operation, mode, ctl_server) for operation in operations) if failure]
    assert not failures, "\n\n".join(failures)
