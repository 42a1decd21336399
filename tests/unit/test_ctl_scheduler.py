"""Scheduler: examples for each constraint and its reason, and properties checked with hypothesis
(placement count honoured, capacity never exceeded, stable across re-runs and node additions)."""

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from goship_ctl.scheduler.eligibility import matches, static_problem
from goship_ctl.scheduler.model import NodeInfo, PlacementRule, Request, Resources
from goship_ctl.scheduler.placement import schedule, wanted

SMALL = Resources(1, 512)


def nodes_abc(**overrides):
    return [NodeInfo(name, {"zone": zone}, Resources(4, 4096), **overrides.get(name, {}))
            for name, zone in (("a1", "a"), ("a2", "a"), ("b1", "b"))]


def request(project="p", current=(), demand=SMALL, confidential=None, **rule):
    return Request(project, PlacementRule(**rule), demand, confidential, tuple(current))


def test_count_placement_spreads_over_the_least_loaded_nodes():
    nodes = nodes_abc()
    decisions = schedule([request("p1", count=1), request("p2", count=1), request("p3", count=1)], nodes)
    assert sorted(d.nodes[0] for d in decisions.values()) == ["a1", "a2", "b1"]


def test_spread_by_label_prefers_a_new_zone():
    decision = schedule([request(count=2, spread_by="zone")], nodes_abc())["p"]
    assert decision.scheduled and sorted(decision.nodes) == ["a1", "b1"]


def test_node_names_and_selector():
    decisions = schedule([request("named", node_names=("a2", "b1")), request("zone-a", selector={"zone": "a"}),
                          request("one-of-a", selector={"zone": "a"}, count=1)], nodes_abc())
    assert decisions["named"].nodes == ("a2", "b1")
    assert decisions["zone-a"].nodes == ("a1", "a2") and decisions["zone-a"].scheduled
    assert len(decisions["one-of-a"].nodes) == 1 and decisions["one-of-a"].nodes[0].startswith("a")


def test_reasons_name_the_constraint_and_the_nodes():
    nodes = nodes_abc(a1={"schedulable": False}, a2={"healthy": False})
    decision = schedule([request(count=3, demand=Resources(8, 512))], nodes)["p"]
    assert decision.nodes == () and not decision.scheduled
    assert decision.reason == ("placed on 0 of 3 nodes; a1: drained; a2: unreachable; "
                               "b1: not enough vCPUs (needs 8, 4 of 4 free)")
    memory = schedule([request(count=1, demand=Resources(1, 5000))], nodes_abc())["p"]
    assert "not enough memory (needs 5000 MiB, 4096 of 4096 MiB free)" in memory.reason


def test_more_nodes_wanted_than_exist():
    decision = schedule([request(count=5)], nodes_abc())["p"]
    assert len(decision.nodes) == 3 and decision.reason == "placed on 3 of 5 nodes; only 3 node(s) exist"


def test_unknown_node_name_and_empty_selector():
    decisions = schedule([request("named", node_names=("a1", "zz")), request("sel", selector={"zone": "q"})],
                         nodes_abc())
    assert decisions["named"].nodes == ("a1",) and "zz: no such node" in decisions["named"].reason
    assert decisions["sel"].reason == "no node matches selector zone=q"


def test_unknown_capacity_is_not_schedulable():
    decision = schedule([request(count=1)], [NodeInfo("n1")])["p"]
    assert decision.reason == "placed on 0 of 1 nodes; n1: capacity unknown (no host facts yet)"


def test_confidential_type_needs_a_node_that_supports_it():
    nodes = nodes_abc(b1={"confidential": frozenset({"sev", "sev-snp"})})
    decisions = schedule([request("snp", count=1, confidential="sev-snp"), request("tdx", count=1, confidential="tdx")],
                         nodes)
    assert decisions["snp"].nodes == ("b1",) and decisions["snp"].scheduled
    assert "a1: no confidential VM type tdx (supports: none)" in decisions["tdx"].reason
    assert "b1: no confidential VM type tdx (supports: sev, sev-snp)" in decisions["tdx"].reason


def test_placed_vms_stay_while_their_node_is_healthy():
    nodes = nodes_abc()
    # p sits on the busiest node; a fresh placement would pick another, a re-run must not move it.
    busy = [request("q%d" % i, count=1, current=("a1",)) for i in range(2)]
    decisions = schedule(busy + [request("p", count=1, current=("a1",))], nodes)
    assert decisions["p"].nodes == ("a1",)


def test_drain_and_unreachable_move_vms_elsewhere():
    placed = request(count=2, current=("a1", "a2"))
    drained = schedule([placed], nodes_abc(a1={"schedulable": False}))["p"]
    assert drained.nodes == ("a2", "b1") and drained.scheduled
    lost = schedule([placed], nodes_abc(a2={"healthy": False}))["p"]
    assert lost.nodes == ("a1", "b1")


def test_new_vms_never_displace_running_ones():
    nodes = [NodeInfo("n1", capacity=Resources(2, 1024))]
    old = request("old", count=1, current=("n1",), demand=Resources(2, 1024))
    decisions = schedule([request("new", count=1, demand=Resources(2, 1024)), old], nodes)
    assert decisions["old"].nodes == ("n1",) and decisions["new"].nodes == ()


def test_scaling_the_count_down_keeps_a_subset():
    decision = schedule([request(count=1, current=("a2", "b1"))], nodes_abc())["p"]
    assert decision.nodes in (("a2",), ("b1",))


# -- properties ---------------------------------------------------------------------------
ZONES = ("a", "b", "c")
TYPES = ("sev", "sev-snp", "tdx")


@st.composite
def clusters(draw):
    count = draw(st.integers(0, 7))
    nodes = []
    for index in range(count):
        capacity = draw(st.one_of(st.none(), st.builds(Resources, st.integers(1, 8), st.integers(256, 8192))))
        nodes.append(NodeInfo(
            "n%d" % index, {"zone": draw(st.sampled_from(ZONES))}, capacity,
            frozenset(draw(st.sets(st.sampled_from(TYPES)))), draw(st.booleans()), draw(st.booleans())))
    names = [node.name for node in nodes] + ["ghost"]
    requests = []
    for index in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(("count", "names", "selector", "selector-count")))
        rule = {
            "count": lambda: PlacementRule(count=draw(st.integers(0, 5))),
            "names": lambda: PlacementRule(node_names=tuple(draw(st.lists(st.sampled_from(names), min_size=1,
                                                                          max_size=4, unique=True)))),
            "selector": lambda: PlacementRule(selector={"zone": draw(st.sampled_from(ZONES))}),
            "selector-count": lambda: PlacementRule(selector={"zone": draw(st.sampled_from(ZONES))},
                                                    count=draw(st.integers(0, 3))),
        }[kind]()
        rule = dataclasses.replace(rule, spread_by=draw(st.sampled_from((None, "zone"))))
        requests.append(Request(
            "p%d" % index, rule, Resources(draw(st.integers(1, 4)), draw(st.integers(128, 4096))),
            draw(st.sampled_from((None, None, None) + TYPES)),
            tuple(draw(st.lists(st.sampled_from(names), max_size=4, unique=True)))))
    return nodes, requests


# database=None: no .hypothesis directory in the work tree (the sanity tier copies untracked files).
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(clusters())
def test_property_capacity_never_exceeded_and_only_eligible_nodes(cluster):
    nodes, requests = cluster
    decisions = schedule(requests, nodes)
    by_name = {node.name: node for node in nodes}
    used = {node.name: Resources(0, 0) for node in nodes}
    for req in requests:
        for name in decisions[req.project].nodes:
            node = by_name[name]
            assert matches(node, req) and static_problem(node, req) is None
            used[name] += req.demand
    for node in nodes:
        if used[node.name] != Resources(0, 0):
            assert used[node.name].vcpus <= node.capacity.vcpus
            assert used[node.name].memory_mib <= node.capacity.memory_mib


@PROPERTY_SETTINGS
@given(clusters())
def test_property_placement_count_honoured(cluster):
    nodes, requests = cluster
    decisions = schedule(requests, nodes)
    for req in requests:
        decision = decisions[req.project]
        assert len(set(decision.nodes)) == len(decision.nodes) <= wanted(req, nodes)
        if decision.scheduled:
            assert len(decision.nodes) == wanted(req, nodes)
        else:
            assert decision.reason


@PROPERTY_SETTINGS
@given(clusters())
def test_property_stable_across_reruns(cluster):
    nodes, requests = cluster
    first = schedule(requests, nodes)
    again = [dataclasses.replace(req, current=first[req.project].nodes) for req in requests]
    assert schedule(again, nodes) == first


@PROPERTY_SETTINGS
@given(clusters(), st.builds(Resources, st.integers(1, 8), st.integers(256, 8192)))
def test_property_adding_a_node_moves_no_vm(cluster, capacity):
    nodes, requests = cluster
    first = schedule(requests, nodes)
    placed = [dataclasses.replace(req, current=first[req.project].nodes) for req in requests]
    grown = schedule(placed, nodes + [NodeInfo("new", {"zone": "a"}, capacity)])
    for req in requests:
        assert set(first[req.project].nodes) <= set(grown[req.project].nodes)


@PROPERTY_SETTINGS
@given(st.integers(1, 6), st.integers(0, 6))
def test_property_count_met_when_room_exists(node_count, count):
    nodes = [NodeInfo("n%d" % i, {}, Resources(64, 65536)) for i in range(node_count)]
    decision = schedule([request(count=count)], nodes)["p"]
    assert decision.scheduled == (count <= node_count)
    assert len(decision.nodes) == min(count, node_count)
