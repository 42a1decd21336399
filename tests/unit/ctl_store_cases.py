"""State-store cases every backend must pass. A test module subclasses StoreCases and provides a
``database_url`` fixture naming a fresh, empty database (SQLite here, PostgreSQL in
tests/integration/test_ctl_postgres.py)."""

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from ctl_helpers import ADMIN, node, project, service_with_nodes
from goship_ctl.auth.principal import Principal
from goship_ctl.collection import desired_state_module
from goship_ctl.errors import Conflict, Forbidden, Invalid, NotFound
from goship_ctl.reconciler.recorder import ActualStateRecorder
from goship_ctl.reconciler.trigger import PendingNodes
from goship_ctl.store.models import App, Base, Event, Placement, Project

HOST_FACTS = {"capacity": {"vcpus_total": 2, "vcpus_allocated": 0, "vcpus_free": 2, "memory_mib_total": 4096,
                           "memory_mib_allocated": 0, "memory_mib_free": 3072},
              "confidential": {"sev": True, "sev_es": False, "sev_snp": True, "tdx": False}}


def guest_status_vm(node_name, project_name="alpha", generation=1, states=("ready", "ready")):
    """One entry of goship.core.guest_status's ``vms`` result."""
    return {"domain": "goship-%s-%s" % (node_name, project_name), "project": project_name, "node": node_name,
            "generation": generation, "active": True, "reachable": True,
            "status": {"generation": generation, "apps": {"web": {"replicas": [
                {"index": index, "state": state, "restarts": index, "exit_code": None,
                 "health": {"http": {"status": "passing"}}, "last_error": None,
                 "cpu_usec": 1500000, "memory_bytes": 4 << 20} for index, state in enumerate(states)]}}}}


class StoreCases:
    @pytest.fixture
    def service(self, database_url):
        service = service_with_nodes(database_url)
        yield service
        service.close()

    def test_migrations_match_the_models(self, service):
        engine = service.sessions.kw["bind"]
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert set(inspect(connection).get_table_names()) >= {"alembic_version", *Base.metadata.tables}

    def test_apply_creates_then_updates_then_is_unchanged(self, service):
        created = service.apply_project(ADMIN, project())
        assert created["result"] == "created"
        assert created["project"]["status"]["generation"] == 1
        assert len(created["project"]["status"]["nodes"]) == 2
        assert service.apply_project(ADMIN, project())["result"] == "unchanged"
        updated = service.apply_project(ADMIN, project(memory_mib=1024))
        assert updated["result"] == "updated" and updated["project"]["status"]["generation"] == 2
        assert updated["project"]["metadata"]["resourceVersion"] > created["project"]["metadata"]["resourceVersion"]

    def test_every_change_bumps_the_generation(self, service):
        service.apply_project(ADMIN, project())
        generation = [service.get_project(ADMIN, "alpha")["status"]["generation"]]
        service.scale_app(ADMIN, "alpha", "web", 3)
        generation.append(service.get_project(ADMIN, "alpha")["status"]["generation"])
        service.apply_project(ADMIN, project(placement={"nodes": 3}))
        generation.append(service.get_project(ADMIN, "alpha")["status"]["generation"])
        service.scale_app(ADMIN, "alpha", "web", 2)  # the apply above set 2 again: no change, no bump
        generation.append(service.get_project(ADMIN, "alpha")["status"]["generation"])
        assert generation == [1, 2, 3, 3]

    def test_stale_resource_version_is_a_conflict_and_writes_nothing(self, service):
        version = service.apply_project(ADMIN, project())["project"]["metadata"]["resourceVersion"]
        service.scale_app(ADMIN, "alpha", "web", 5, resource_version=version)
        for write in (lambda: service.apply_project(ADMIN, project(memory_mib=1024, resourceVersion=version)),
                      lambda: service.scale_app(ADMIN, "alpha", "web", 1, resource_version=version),
                      lambda: service.delete_project(ADMIN, "alpha", resource_version=version)):
            with pytest.raises(Conflict, match="resourceVersion"):
                write()
        stored = service.get_project(ADMIN, "alpha")
        assert stored["spec"]["vm"]["memory_mib"] == 512 and stored["spec"]["apps"][0]["replicas"] == 5

    def test_resource_version_of_a_missing_project_is_a_conflict(self, service):
        with pytest.raises(Conflict, match="does not exist"):
            service.apply_project(ADMIN, project(resourceVersion=1))

    def test_concurrent_writers_with_the_same_version_one_wins(self, service):
        version = service.apply_project(ADMIN, project())["project"]["metadata"]["resourceVersion"]
        results, barrier = [], threading.Barrier(4)

        def writer(replicas):
            barrier.wait(timeout=10)
            try:
                service.scale_app(ADMIN, "alpha", "web", replicas, resource_version=version)
                results.append("ok")
            except Conflict:
                results.append("conflict")

        threads = [threading.Thread(target=writer, args=(replicas,)) for replicas in (3, 4, 5, 6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(results) == ["conflict", "conflict", "conflict", "ok"]

    def test_invalid_document_persists_nothing(self, service):
        bad = project()
        bad["spec"]["apps"][0]["replicas"] = -1
        with pytest.raises(Invalid):
            service.apply_project(ADMIN, bad)
        with service.sessions() as session:
            assert session.scalars(select(Project)).all() == []
            assert session.scalars(select(App)).all() == []
            assert not [e for e in session.scalars(select(Event)) if e.project]

    def test_delete_cascades_to_apps_and_placements(self, service):
        service.apply_project(ADMIN, project())
        deleted = service.delete_project(ADMIN, "alpha")
        assert deleted["result"] == "deleted" and len(deleted["nodes"]) == 2
        with service.sessions() as session:
            assert session.scalars(select(App)).all() == [] and session.scalars(select(Placement)).all() == []
        with pytest.raises(NotFound):
            service.get_project(ADMIN, "alpha")

    def test_placement_and_capacity(self, service):
        service.apply_project(ADMIN, project("big", placement={"nodes": 3}, vcpus=3, memory_mib=3000))
        small = service.apply_project(ADMIN, project("small", placement={"nodeNames": ["node1"]}, vcpus=2))
        assert not small["project"]["status"]["scheduled"]
        assert small["project"]["status"]["message"] == \
            "placed on 0 of 1 nodes; node1: not enough vCPUs (needs 2, 1 of 4 free)"
        nodes = {n["name"]: n for n in service.list_nodes(ADMIN)}
        assert nodes["node1"]["allocated"] == {"vcpus": 3, "memory_mib": 3000}

    def test_drain_moves_projects_and_delete_node_needs_it(self, service):
        service.apply_project(ADMIN, project(placement={"nodes": 2}))
        before = service.get_project(ADMIN, "alpha")["status"]["nodes"]
        victim = before[0]
        with pytest.raises(Conflict, match="drain it first"):
            service.delete_node(ADMIN, victim)
        drained = service.set_node_schedulable(ADMIN, victim, False)
        assert drained["moved"] == [{"project": "alpha", "from": before,
                                     "to": sorted(set(before) - {victim} | {"node3"})}]
        assert victim not in service.get_project(ADMIN, "alpha")["status"]["nodes"]
        assert service.delete_node(ADMIN, victim)["result"] == "deleted"

    def test_placement_is_stable_when_nodes_change(self, service):
        service.apply_project(ADMIN, project(placement={"nodes": 2}))
        before = service.get_project(ADMIN, "alpha")["status"]["nodes"]
        service.apply_node(ADMIN, node("node4", vcpus=64, memory_mib=65536))
        service.apply_node(ADMIN, node("node1", vcpus=4, memory_mib=4096, labels={"zone": "moved"}))
        assert service.get_project(ADMIN, "alpha")["status"]["nodes"] == before

    def test_desired_state_passes_the_collection_validator(self, service):
        service.apply_project(ADMIN, project())
        document = service.desired_state(ADMIN)
        shared = desired_state_module()
        assert shared.validate(document) is document
        alpha = document["projects"]["alpha"]
        assert alpha["generation"] == 1 and len(alpha["nodes"]) == 2
        assert alpha["apps"][0]["env"]["DB_PASSWORD"] == {"value": "s3cret", "secret": True}
        vms = shared.project_vms_by_node(document)
        assert [vm["domain"] for vm in vms[alpha["nodes"][0]]] == ["goship-%s-alpha" % alpha["nodes"][0]]

    def test_reads_never_show_secrets(self, service):
        applied = service.apply_project(ADMIN, project())
        assert applied["project"]["spec"]["apps"][0]["env"]["DB_PASSWORD"] == {"secret": True}
        assert "s3cret" not in repr(service.get_project(ADMIN, "alpha")) + repr(service.events(ADMIN))

    def test_project_principal_sees_only_its_project(self, service):
        service.apply_project(ADMIN, project("alpha"))
        service.apply_project(ADMIN, project("beta"))
        alpha = Principal("alpha-token", project="alpha")
        assert [p["name"] for p in service.list_projects(alpha)] == ["alpha"]
        assert {a["project"] for a in service.list_apps(alpha)} == {"alpha"}
        for call in (lambda: service.get_project(alpha, "beta"), lambda: service.list_apps(alpha, "beta"),
                     lambda: service.scale_app(alpha, "beta", "web", 0), lambda: service.delete_project(alpha, "beta"),
                     lambda: service.apply_project(alpha, project("beta"))):
            with pytest.raises(NotFound):
                call()
        for call in (lambda: service.list_nodes(alpha), lambda: service.list_tokens(alpha),
                     lambda: service.desired_state(alpha), lambda: service.create_token(alpha, "x", "alpha")):
            with pytest.raises(Forbidden):
                call()
        assert {e["project"] for e in service.events(alpha)} == {"alpha"}

    def test_tokens_are_hashed_shown_once_and_revocable(self, service):
        created = service.create_token(ADMIN, "ci", "alpha")
        assert created["token"].startswith("gsp_%s_" % created["id"])
        assert "token" not in service.list_tokens(ADMIN)[0]
        assert service.authenticate(created["token"]) == Principal("ci", "alpha")
        assert service.authenticate(created["token"][:-1] + ("B" if created["token"].endswith("A") else "A")) is None
        assert service.authenticate("gsp_000000000000_" + "x" * 43) is None
        engine = service.sessions.kw["bind"]
        with engine.connect() as connection:
            stored = " ".join(str(row) for row in connection.exec_driver_sql("SELECT * FROM tokens"))
        assert created["token"].split("_", 2)[2] not in stored
        service.revoke_token(ADMIN, created["id"])
        assert service.authenticate(created["token"]) is None

    def test_authentication_notes_last_use_at_most_once_a_minute(self, service):
        created = service.create_token(ADMIN, "ci", "alpha")
        assert service.list_tokens(ADMIN)[0]["lastUsedAt"] is None
        service.authenticate(created["token"])
        first = service.list_tokens(ADMIN)[0]["lastUsedAt"]
        service.authenticate(created["token"])
        assert first is not None and service.list_tokens(ADMIN)[0]["lastUsedAt"] == first

    def test_reconcile_trigger_gets_the_changed_nodes(self, service):
        trigger = PendingNodes()
        service.trigger = trigger
        applied = service.apply_project(ADMIN, project())
        assert set(trigger.take(0)) == set(applied["project"]["status"]["nodes"])
        service.apply_project(ADMIN, project())
        assert trigger.take(0) == {}

    def test_recorder_turns_reports_into_actual_state(self, service):
        trigger = PendingNodes()
        recorder = ActualStateRecorder(service.sessions, trigger)
        service.apply_project(ADMIN, project(placement={"nodes": 1}, vcpus=1))
        node_name = service.get_project(ADMIN, "alpha")["status"]["nodes"][0]
        recorder.guest_status(node_name, [guest_status_vm(node_name), guest_status_vm(node_name, "gone")])
        apps = service.list_apps(ADMIN)
        assert apps[0]["desired"] == 2 and apps[0]["states"] == {"ready": 2} and apps[0]["restarts"] == 1
        assert apps[0]["instances"][0]["health"] == "passing" and apps[0]["instances"][0]["cpuSeconds"] == 1.5
        vms = {(vm["project"], vm["node"]): vm for vm in service.list_vms(ADMIN)}
        assert vms[("alpha", node_name)]["state"] == "running" and vms[("gone", node_name)]["desired"] is False
        recorder.guest_status(node_name, [])  # everything gone from that node
        assert service.list_apps(ADMIN)[0]["states"] == {}

    def test_recorder_facts_and_unreachable_nodes(self, service):
        trigger = PendingNodes()
        recorder = ActualStateRecorder(service.sessions, trigger)
        service.apply_node(ADMIN, {"name": "fresh"})
        assert service.get_node(ADMIN, "fresh")["capacity"] is None
        recorder.node_facts("fresh", HOST_FACTS)
        fresh = service.get_node(ADMIN, "fresh")
        assert fresh["capacity"] == {"vcpus": 2, "memory_mib": 3072} and fresh["capacitySource"] == "facts"
        assert fresh["confidential"] == ["sev", "sev-snp"] and fresh["status"] == "ready"
        confidential = project("snp", placement={"nodes": 1}, vcpus=1)
        confidential["spec"]["vm"]["confidential"] = {"type": "sev-snp"}
        assert service.apply_project(ADMIN, confidential)["project"]["status"]["nodes"] == ["fresh"]
        trigger.take(0)
        recorder.node_unreachable("fresh", "ssh: connection refused")
        status = service.get_project(ADMIN, "snp")["status"]
        assert status["nodes"] == [] and "fresh: unreachable" in status["message"]
        assert "fresh" in trigger.take(0)
        recorder.run_finished("fresh", "unreachable", 2.5)
        assert service.events(ADMIN, node="fresh")[-1]["kind"] == "reconcile.unreachable"
