"""The stack memo (bpf/rsttrace.bpf.c, stack_key()): a remembered stack is
the stack a walk would have found, and a storm walks its path once per CPU.

STACK_MEMO_CHECK builds the program so that it walks every stack all the
same and counts the remembered ones that differ from the walk
(COUNT_MEMO_WRONG); the workload alternates paths on the same hook (IPv4
and IPv6 replies from softirq, aborts from close() in process context) so
that remembered paths are both confirmed and contradicted. One tracer for
the module (the VM suite runs this in kprobe mode, where a compile takes a
minute)."""

import os

import pytest

from bpfcheck import require_bpf
from rsttrace import abi
from rsttrace.lab import craft, traffic
from rsttrace.trace.filters import Filters
from rsttrace.trace.stacks import base_name

pytestmark = pytest.mark.root

ROUNDS = 6
BURST = 300


@pytest.fixture(scope="module")
def traced():
    require_bpf()
    from rsttrace.lab.netns import NamespacePair
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    records = []
    with NamespacePair() as pair:
        tracer = Tracer(filters=Filters(netns=pair.inodes()),
                        defines=("STACK_MEMO_CHECK",))
        session = Session(tracer, on_record=records.append).start()
        try:
            yield pair, session, records
        finally:
            session.finish()


def wrong_stacks(session):
    """The last remembered stack a walk contradicted, and the walk's, as
    text (for the assertion's message)."""
    t = session.tracer
    table = t.bpf[b"memo_wrong"]
    keys = [table[table.Key(i)].value for i in (0, 1)]
    return "\n".join("%s: %s" % (name, [t.ksym(a) for a in
                                         t.stack(k) or []])
                     for name, k in zip(("remembered", "walked"), keys))


def counts(session):
    return dict(zip(("matched", "walks", "hits", "wrong"),
                    session.tracer.counter(
                        abi.COUNT_MATCHED, abi.COUNT_STACK_WALKS,
                        abi.COUNT_MEMO_HITS, abi.COUNT_MEMO_WRONG)))


def test_every_remembered_stack_is_the_walks(traced):
    pair, session, records = traced
    start = len(records)
    for _ in range(ROUNDS):
        traffic.closed_port(pair, 4)
        traffic.closed_port(pair, 6)
        traffic.linger_zero(pair, 4)
        traffic.unread_data_close(pair, 6)
        craft.syn_burst(pair, "a", "b", traffic.free_port(pair, "b", 4), 50)
    traffic.settle(0.2)
    session.drain()
    c = counts(session)
    mine = records[start:]
    assert c["matched"] == len(records) and len(mine) > ROUNDS * 50
    assert c["hits"] > c["matched"] // 2    # remembered stacks were checked
    assert c["wrong"] == 0, wrong_stacks(session)
    assert {"no-listener", "linger-zero-close", "unread-data-close"} <= \
        {r["cause"] for r in mine}


def test_a_storm_walks_once_per_cpu_and_path(traced):
    pair, session, records = traced
    before, start = counts(session), len(records)
    port = traffic.free_port(pair, "b", 4)
    craft.syn_burst(pair, "a", "b", port, BURST)
    traffic.settle(0.2)
    session.drain()
    c = counts(session)
    mine = records[start:]
    assert len(mine) == c["matched"] - before["matched"] == BURST
    # (under STACK_MEMO_CHECK every event walks: the misses are the events
    # that found nothing remembered)
    misses = BURST - (c["hits"] - before["hits"])
    # the path's first RST on each CPU, and few others (an interrupt that
    # lands in the softirq makes a path of its own)
    assert misses <= 2 * os.cpu_count() + 5
    assert c["wrong"] == 0, wrong_stacks(session)
    stacks = {tuple(r["stack"]) for r in mine}
    # each walked then, or remembered from before (one path per CPU)
    assert len(stacks) <= misses + os.cpu_count()
    for stack in stacks:
        names = [base_name(f) for f in stack]
        assert names[:2] == ["tcp_v4_send_reset", "tcp_v4_rcv"]
        # the softirq's own frames, not the task it interrupted
        assert "net_rx_action" in names or "process_backlog" in names
        assert not {"__x64_sys_sendto", "do_syscall_64"} & set(names)
