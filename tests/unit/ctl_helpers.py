"""Documents and services for the control-service tests (test_ctl_*.py, tests/integration/test_ctl_postgres.py)."""

import copy

from goship_ctl.auth.principal import LOCAL_ADMIN
from goship_ctl.service.control import ControlService

ADMIN = LOCAL_ADMIN

ALPHA = {
    "apiVersion": "goship/v1",
    "kind": "Project",
    "metadata": {"name": "alpha"},
    "spec": {
        "placement": {"nodes": 2},
        "vm": {"vcpus": 2, "memory_mib": 512},
        "apps": [{"name": "web", "image": "demo-web", "replicas": 2, "ports": [8080],
                  "env": {"GREETING": "hello", "DB_PASSWORD": {"value": "s3cret", "secret": True}}}],
    },
}


def project(name="alpha", placement=None, vcpus=2, memory_mib=512, apps=None, **metadata):
    document = copy.deepcopy(ALPHA)
    document["metadata"] = dict(name=name, **metadata)
    if placement is not None:
        document["spec"]["placement"] = placement
    document["spec"]["vm"] = {"vcpus": vcpus, "memory_mib": memory_mib}
    if apps is not None:
        document["spec"]["apps"] = apps
    return document


def node(name, vcpus=4, memory_mib=4096, **fields):
    return dict(name=name, capacity={"vcpus": vcpus, "memory_mib": memory_mib}, **fields)


def service_with_nodes(url, count=3, **capacity):
    service = ControlService.open(url)
    for index in range(1, count + 1):
        service.apply_node(ADMIN, node("node%d" % index, labels={"zone": "z%d" % index}, **capacity))
    return service
