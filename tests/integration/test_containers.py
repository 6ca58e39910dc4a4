"""Real podman containers (podman_lab.py): RSTs provoked into and out of a
container in its own network namespace, and inside a pod, carry the
container's and the pod's names; --container and --pod select them in the
kernel, and follow a container that starts after tracing began."""

import os

import pytest

from bpfcheck import require_bpf
from rsttrace.lab import craft, traffic
from rsttrace.trace.filters import Filters
from who import one, since

pytestmark = pytest.mark.root

PORT = 8080                     # the containers' listeners
CLOSED = 9                      # nothing listens there


@pytest.fixture(scope="module")
def lab():
    """(pair, lab, session, records, selection, names): a tracer selecting
    a container (started after the tracer, in namespace b) and a pod (a
    container in its own namespace) by name, with the who-fields."""
    require_bpf()
    from podman_lab import PodmanLab
    from rsttrace.context.containers import ContainerIndex
    from rsttrace.context.enrich import Enricher
    from rsttrace.context.procfs import Proc
    from rsttrace.context.select import Selection
    from rsttrace.lab.netns import NamespacePair
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    tag = "%d" % os.getpid()
    names = {"ctr": "rsttrace-ctr-" + tag, "pod": "rsttrace-pod-" + tag,
             "podctr": "rsttrace-podctr-" + tag}
    records = []
    podman = PodmanLab(tag)
    try:
        podman.build_image()
        with NamespacePair() as pair:
            index = ContainerIndex(Proc())
            selection = Selection(index, [names["ctr"]], [names["pod"]])
            session = Session(Tracer(filters=Filters(netns_dynamic=True)),
                              on_record=records.append,
                              enricher=Enricher(Proc(), index))
            session.start()
            try:
                # before the containers exist: nothing selected yet
                assert selection.apply(session.tracer) == [names["ctr"],
                                                            names["pod"]]
                podman.run(names["ctr"], "nc", "-l", "-p", str(PORT),
                           network="ns:/run/netns/" + pair.names["b"])
                podman.pod(names["pod"])
                podman.run(names["podctr"], "nc", "-l", "-p", str(PORT),
                           pod=names["pod"])
                assert selection.apply(session.tracer) == []
                yield pair, podman, session, records, selection, names
            finally:
                session.finish()
    finally:
        podman.close()


def provoked(lab, fn, port):
    pair, podman, session, records, selection, names = lab
    start = len(records)
    fn()
    return since(session, records, start, port, 0.3)


def check_container(rec, names, podman, key):
    ctr = rec["container"]
    assert ctr["runtime"] == "podman"
    assert ctr["name"] == names[key]
    assert ctr["image"] == podman.image
    assert len(ctr["id"]) == 64


def test_into_the_container(lab):
    """A bare ACK to the container's listener: the listener's RST names
    the container's nc and the container."""
    pair, podman, session, records, selection, names = lab
    recs = provoked(lab, lambda: craft.send_segment(
        pair, "a", "b", 40123, PORT, seq=1, ack=1, flags=craft.ACK), PORT)
    rst = one(recs, kind="sent")
    assert rst["state"] == "LISTEN"
    assert (rst["owner_pid"], rst["owner_comm"], rst["owner_source"]) == \
        (podman.pid(names["ctr"]), "nc", "socket")
    check_container(rst, names, podman, "ctr")
    assert rst["pod"] is None
    assert rst["netns_name"] == pair.names["b"]


def test_no_socket_in_the_container(lab):
    """A SYN to a closed port of the container's namespace: no socket, no
    owner, and the namespace is the container's."""
    pair, podman, session, records, selection, names = lab
    recs = provoked(lab, lambda: craft.send_segment(
        pair, "a", "b", 40124, CLOSED, seq=1, ack=0, flags=craft.SYN), CLOSED)
    rst = one(recs, kind="sent")
    assert (rst["owner_pid"], rst["owner_source"]) == (None, "no-socket")
    check_container(rst, names, podman, "ctr")


def test_out_of_the_container_and_the_filter(lab):
    """The container's nc connects to a closed port in namespace a: the
    RST a sends is not selected (a is no container's namespace), the one
    the container's socket takes is, naming nc and the container."""
    pair, podman, session, records, selection, names = lab
    res = []
    recs = provoked(lab, lambda: res.append(podman.exec(
        names["ctr"], "nc", pair.ipv4["a"], str(CLOSED))), CLOSED)
    assert res[0].returncode != 0        # connection refused
    assert [r["kind"] for r in recs] == ["received"]
    got = recs[0]
    assert got["state"] == "SYN_SENT" and got["owner_comm"] == "nc"
    assert got["owner_source"] in ("socket", "task")
    check_container(got, names, podman, "ctr")


def test_inside_the_pod(lab):
    """Within the pod's namespace (loopback): both the RST sent without a
    socket and the one nc's socket takes carry the pod; the container is
    the pod's only application container."""
    pair, podman, session, records, selection, names = lab
    recs = provoked(lab, lambda: podman.exec(
        names["podctr"], "nc", "127.0.0.1", str(CLOSED)), CLOSED)
    assert sorted(r["kind"] for r in recs) == ["received", "sent"]
    for rec in recs:
        assert rec["pod"] == {"namespace": None, "name": names["pod"]}
        check_container(rec, names, podman, "podctr")
    assert one(recs, kind="received")["owner_comm"] == "nc"


def test_exporter_labels_name_the_container_and_the_pod(lab):
    """`rsttrace exporter --label container,pod` names a count's network
    namespace through a container index of its own: the container's
    namespace by the container's name, the pod's by the pod's name."""
    from rsttrace.output.metric_labels import ResetCounters
    pair, podman, session, records, selection, names = lab
    recs = provoked(lab, lambda: podman.exec(
        names["podctr"], "nc", "127.0.0.1", str(CLOSED)), CLOSED)
    recs += provoked(lab, lambda: craft.send_segment(
        pair, "a", "b", 40125, CLOSED, seq=1, ack=0, flags=craft.SYN), CLOSED)
    assert len(recs) == 3
    counters = ResetCounters(["container", "pod"])
    for rec in recs:
        counters.add(rec, 1)
    assert {v[-2:] for v, n in counters.snapshot()} == {
        (names["ctr"], "none"), (names["podctr"], names["pod"])}


def test_the_lab_leaves_the_host_as_it_was(lab):
    """Last in this module: closing the lab (the fixture's own close after
    this does nothing) leaves no podman process and the host's podman
    paths, cgroups and mounts as they were before the lab began (other
    podman users' cgroups aside)."""
    pair, podman, session, records, selection, names = lab
    podman.close()
    # the two containers, the pod and its infra container
    assert len(podman.ids) == 4
    assert set(names.values()) < set(podman.ids.values())
    assert podman.processes() == []
    assert not os.path.exists(podman.dir)
    assert podman.leftovers() == (set(), set())
