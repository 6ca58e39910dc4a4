"""Who reset it: in the softirq cases the event names the process that owns
(or owned) the socket, not the task that was interrupted. Each socket's
owner is a separate named process (owner_process.py), blocked while the
RST happens; the traffic that provokes it comes from the test process or
from a kernel timer, so the interrupted task is never the owner."""

import os
import time

import pytest

from bpfcheck import require_bpf
from owner_process import OwnerProcess
from who import one, since
from rsttrace.lab import traffic
from rsttrace.trace.filters import Filters

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def traced():
    """(pair, session, records): one tracer for the module, with the who-
    fields, filtered to the pair's two namespaces."""
    require_bpf()
    from rsttrace.context.enrich import Enricher
    from rsttrace.lab.netns import NamespacePair
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    records = []
    with NamespacePair() as pair:
        tracer = Tracer(filters=Filters(netns=pair.inodes()))
        session = Session(tracer, on_record=records.append,
                          enricher=Enricher())
        session.start()
        try:
            yield pair, session, records
        finally:
            session.finish()


def events(traced, start, port, settle=0.1):
    pair, session, records = traced
    return since(session, records, start, port, settle)


def connect_from_a(pair, port, blocking=True):
    def step(state):
        cli = pair.socket("a")
        if blocking:
            cli.settimeout(5)
            cli.connect((pair.ipv4["b"], port))
        else:
            cli.setblocking(False)
            cli.connect_ex((pair.ipv4["b"], port))
        state["cli"] = cli
        return cli.getsockname()[1]
    return step


def test_accept_overflow_names_the_listeners_owner(traced):
    """The RST made on behalf of a full listener names the process that
    listens (and never accepted), not the client traffic's task."""
    pair, session, records = traced
    start = len(records)
    pair.sysctl("b", "net.ipv4.tcp_abort_on_overflow", 1)

    def listen(state):
        lst = state["lst"] = pair.socket("b")
        lst.bind((pair.ipv4["b"], 0))
        lst.listen(8)
        return lst.getsockname()[1]

    def shrink(state):
        state["lst"].listen(0)          # the accept queue holds one

    with OwnerProcess("rst-listener", [listen, shrink, lambda s: None]) \
            as owner:
        port = owner.next()
        traffic.overflow(pair, port, owner.next)
        recs = events(traced, start, port, 0.3)
        owner.next()
    rst = one(recs, kind="sent", state="LISTEN")
    assert rst["cause"] == "accept-queue-overflow"
    assert rst["context"] == "softirq"
    assert rst["pid"] != owner.pid
    assert (rst["owner_pid"], rst["owner_comm"], rst["owner_source"]) == \
        (owner.pid, "rst-listener", "socket")
    assert rst["netns_name"] == pair.names["b"]
    assert rst["container"] is None and rst["pod"] is None


def test_data_after_close_names_the_last_owner(traced):
    """The orphaned socket's RST names the process that closed it, after
    that process has exited; the peer's received RST names the process
    holding the accepted socket (found by its inode in /proc)."""
    pair, session, records = traced
    start = len(records)
    lst, port = traffic.listener(pair)

    def close(state):
        state.pop("cli").close()        # FIN: a goes to FIN_WAIT2

    owner = OwnerProcess("rst-closer", [connect_from_a(pair, port), close])
    try:
        owner.next()
        srv, _ = lst.accept()
        pair.keep(srv)
        owner.next()
    finally:
        owner.close()                   # the closer has exited
    time.sleep(0.1)
    # The late data reaches a's closed socket on a retransmit (a timer),
    # so that the RST comes back in softirq with no task on srv.
    traffic.block_input(pair, "a")
    srv.send(b"late data")
    traffic.unblock_input(pair, "a")
    recs = events(traced, start, port, 1.0)
    sent = one(recs, kind="sent")
    assert sent["cause"] == "data-after-close"
    assert sent["state"] == "TIME_WAIT"
    assert sent["context"] == "softirq" and sent["pid"] != owner.pid
    assert (sent["owner_pid"], sent["owner_comm"], sent["owner_source"]) == \
        (owner.pid, "rst-closer", "socket")
    assert sent["netns_name"] == pair.names["a"]

    got = one(recs, kind="received")
    assert got["state"] == "CLOSE_WAIT" and got["context"] == "softirq"
    assert (got["owner_pid"], got["owner_source"]) == (os.getpid(), "fd")


def test_half_open_names_the_clients_owner(traced):
    """The server forgot the connection; the client's data, retransmitted
    by a timer, draws an RST from a socket-less server (no owner: no
    socket) and the client's socket takes it in softirq, named after the
    process that connected it."""
    pair, session, records = traced
    start = len(records)
    lst, port = traffic.listener(pair)

    def send(state):
        state["cli"].send(b"request")

    with OwnerProcess("rst-client", [connect_from_a(pair, port), send,
                                     lambda s: None]) as owner:
        owner.next()
        srv, _ = lst.accept()
        lst.close()
        traffic.block_output(pair, "b")             # b's abort is lost
        traffic.linger0(srv)
        srv.close()
        traffic.unblock(pair, "b")
        traffic.block_output(pair, "a")             # the data waits
        owner.next()
        traffic.unblock(pair, "a")                  # for a retransmit
        recs = events(traced, start, port, 1.5)
        owner.next()
    sent = one(recs, kind="sent", cause="no-connection")
    assert sent["state"] is None
    assert (sent["owner_pid"], sent["owner_source"]) == (None, "no-socket")
    got = one(recs, kind="received")
    assert got["state"] == "ESTABLISHED" and got["context"] == "softirq"
    assert got["pid"] != owner.pid
    assert (got["owner_pid"], got["owner_comm"], got["owner_source"]) == \
        (owner.pid, "rst-client", "socket")


@pytest.mark.parametrize("family", [4, 6])
def test_no_listener(traced, family):
    """A SYN to a closed port, sent again by the client's timer: the RST
    has no socket and no owner; the client's received RST names the
    process that called connect()."""
    pair, session, records = traced
    start = len(records)
    fam = traffic.FAMILIES[family]
    port = traffic.free_port(pair, "b", family)

    def connect(state):
        cli = state["cli"] = pair.socket("a", fam)
        cli.setblocking(False)
        cli.connect_ex((pair.addr("b", fam), port))
        return cli.getsockname()[1]

    with OwnerProcess("rst-connect", [connect, lambda s: None]) as owner:
        traffic.block_output(pair, "a")             # the first SYN is lost
        owner.next()
        traffic.unblock(pair, "a")
        recs = events(traced, start, port, 1.5)     # SYN again after 1 s
        owner.next()
    sent = one(recs, kind="sent")
    assert sent["cause"] == "no-listener"
    assert (sent["owner_pid"], sent["owner_comm"], sent["owner_source"]) == \
        (None, None, "no-socket")
    assert sent["netns_name"] == pair.names["b"]
    got = one(recs, kind="received")
    assert got["state"] == "SYN_SENT" and got["context"] == "softirq"
    assert got["pid"] != owner.pid
    assert (got["owner_pid"], got["owner_comm"], got["owner_source"]) == \
        (owner.pid, "rst-connect", "socket")
    assert got["family"] == family


def test_process_context_names_the_task(traced):
    """An abort in close() runs in the closing process: no softirq, the
    task is the owner (and the kernel recorded nothing for an accepted
    socket closed without a FIN)."""
    pair, session, records = traced
    start = len(records)
    lst, port = traffic.listener(pair)
    cli = pair.socket("a")
    cli.settimeout(5)
    cli.connect((pair.ipv4["b"], port))
    srv, _ = lst.accept()
    traffic.linger0(srv)
    srv.close()
    traffic.recv_error(cli)
    recs = events(traced, start, port)
    rst = one(recs, kind="sent")
    assert rst["context"] == "process" and rst["pid"] == os.getpid()
    assert (rst["owner_pid"], rst["owner_source"]) == (os.getpid(), "task")
