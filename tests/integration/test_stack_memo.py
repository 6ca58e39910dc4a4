"""The stack memo (bpf/rsttrace.bpf.c, stack_key()): a remembered stack is
the stack a walk would have found, and a storm walks its path once per CPU.

STACK_MEMO_CHECK builds the program so that it walks every stack all the
same and counts the remembered ones that differ from the walk
(COUNT_MEMO_WRONG); the workload alternates paths on the same hook (IPv4
and IPv6 replies from softirq, aborts from close() in process context) so
that remembered paths are both confirmed and contradicted."""

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


def traced_session(pair, defines=()):
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    records = []
    tracer = Tracer(filters=Filters(netns=pair.inodes()), defines=defines)
    return Session(tracer, on_record=records.append).start(), records


def mixed_paths(pair):
    """RSTs from several paths on each hook, interleaved."""
    for _ in range(ROUNDS):
        traffic.closed_port(pair, 4)
        traffic.closed_port(pair, 6)
        traffic.linger_zero(pair, 4)
        traffic.unread_data_close(pair, 6)
        craft.syn_burst(pair, "a", "b", traffic.free_port(pair, "b", 4), 50)
    traffic.settle(0.2)


@pytest.fixture()
def pair():
    require_bpf()
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


def test_every_remembered_stack_is_the_walks(pair):
    session, records = traced_session(pair, ("STACK_MEMO_CHECK",))
    try:
        mixed_paths(pair)
        session.drain()
        matched, hits, wrong = session.tracer.counter(
            abi.COUNT_MATCHED, abi.COUNT_MEMO_HITS, abi.COUNT_MEMO_WRONG)
    finally:
        session.finish()
    assert matched == len(records) > ROUNDS * 50
    assert hits > matched // 2          # the check had remembered stacks
    assert wrong == 0
    causes = {r["cause"] for r in records}
    assert {"no-listener", "linger-zero-close",
            "unread-data-close"} <= causes


def test_a_storm_walks_once_per_cpu_and_path(pair):
    session, records = traced_session(pair)
    try:
        port = traffic.free_port(pair, "b", 4)
        craft.syn_burst(pair, "a", "b", port, BURST)
        traffic.settle(0.2)
        session.drain()
        matched, walks, hits = session.tracer.counter(
            abi.COUNT_MATCHED, abi.COUNT_STACK_WALKS, abi.COUNT_MEMO_HITS)
    finally:
        session.finish()
    assert matched == len(records) == BURST
    assert walks + hits == matched
    # the path's first RST on each CPU, and few others (an interrupt that
    # lands in the softirq makes a path of its own)
    assert walks <= 2 * os.cpu_count() + 5
    stacks = {tuple(r["stack"]) for r in records}
    assert len(stacks) <= walks
    for stack in stacks:
        names = [base_name(f) for f in stack]
        assert names[:2] == ["tcp_v4_send_reset", "tcp_v4_rcv"]
        # the softirq's own frames, not the task it interrupted
        assert "net_rx_action" in names or "process_backlog" in names
        assert not {"__x64_sys_sendto", "do_syscall_64"} & set(names)
