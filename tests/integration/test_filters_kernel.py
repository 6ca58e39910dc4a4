"""Every in-kernel filter, judged by the kernel's own count of the events
it let through (tracer.counts(): COUNT_MATCHED, incremented after
pass_filters() in bpf/rsttrace.bpf.c), not only by what reached user space.

One set of RSTs (IPv4 and IPv6 closed ports, an SO_LINGER 0 close in this
process) is watched at once by a reference tracer (the pair's namespaces
only) and by one tracer per filter. What each filter must pass is decided
here, from the reference tracer's records, by a predicate written in the
test; each must pass some of them and not all, so that a filter that
passes everything or nothing fails."""

import os

import pytest

from rsttrace.lab import traffic

pytestmark = pytest.mark.root


def own_comm():
    with open("/proc/self/comm") as f:
        return f.read().strip()


@pytest.fixture(scope="module")
def runs():
    from bpfcheck import require_bpf
    require_bpf()
    from rsttrace.lab.netns import NamespacePair
    from rsttrace.trace.filters import Filters, parse_hosts
    from rsttrace.trace.session import Session
    from rsttrace.trace.tracer import Tracer

    with NamespacePair() as pair:
        both = pair.inodes()
        ia, ib = pair.inode("a"), pair.inode("b")
        port = traffic.free_port(pair, "b", 4)
        (b6,) = parse_hosts([pair.addr("b", traffic.FAMILIES[6])])
        # filter -> (Filters, the test's own predicate on a record)
        cases = {
            "reference": (Filters(netns=both), lambda r: True),
            "netns": (Filters(netns={ib}), lambda r: r["netns"] == ib),
            "port": (Filters(netns=both, ports={port}),
                     lambda r: port in (r["sport"], r["dport"])),
            "host": (Filters(netns=both, hosts={b6}),
                     lambda r: str(b6) in (r["saddr"], r["daddr"])),
            "family": (Filters(netns=both, family=6),
                       lambda r: r["family"] == 6),
            "pid": (Filters(netns=both, pid=os.getpid()),
                    lambda r: r["pid"] == os.getpid()),
            "comm": (Filters(netns=both, comm=own_comm()),
                     lambda r: r["comm"] == own_comm()),
            "dynamic": (Filters(netns_dynamic=True),
                        lambda r: r["netns"] == ia),
        }
        sessions, records = {}, {}
        try:
            for name, (filt, _) in cases.items():
                records[name] = []
                sessions[name] = Session(Tracer(filters=filt),
                                         on_record=records[name].append)
                sessions[name].start()
            sessions["dynamic"].tracer.watch_netns(ia)
            _provoke(pair, port)
            traffic.settle(0.3)
            counts = {}
            for name, s in sessions.items():
                s.drain()
                counts[name] = s.tracer.counts()
        finally:
            for s in sessions.values():
                s.finish()
    return cases, records, counts


def _provoke(pair, port):
    """Closed ports over both families, and an SO_LINGER 0 close, made by
    this process; a closed port over IPv4 made by another (bash)."""
    fam4, fam6 = traffic.FAMILIES[4], traffic.FAMILIES[6]
    for fam in (fam4, fam6):
        cli = pair.socket("a", fam)
        cli.settimeout(5)
        try:
            cli.connect((pair.addr("b", fam), port))
        except ConnectionRefusedError:
            pass
        cli.close()
    traffic.linger_zero(pair, 4)
    other = traffic.free_port(pair, "b", 4)
    pair.run("a", "bash", "-c", "echo > /dev/tcp/%s/%d || true"
             % (pair.addr("b", fam4), other))


def key(r):
    return (r["kind"], r["netns"], r["saddr"], r["sport"], r["daddr"],
            r["dport"], r["seq"], r["ack"], r["hook"])


@pytest.mark.parametrize("name", ["netns", "port", "host", "family", "pid",
                                  "comm", "dynamic"])
def test_kernel_count_is_what_the_filter_must_pass(runs, name):
    cases, records, counts = runs
    reference = records["reference"]
    ref_matched, ref_lost = counts["reference"]
    assert ref_lost == 0 and ref_matched == len(reference)
    # three closed ports and a linger close, each sent and received
    assert len(reference) == 4 * 2, reference
    want = [r for r in reference if cases[name][1](r)]
    assert 0 < len(want) < len(reference), (name, want)
    matched, lost = counts[name]
    assert lost == 0
    assert matched == len(want), (name, matched, want)
    assert sorted(map(key, records[name])) == sorted(map(key, want))
