"""Kernel modules loaded and unloaded under a running tracer: netfilter's
REJECT lives in modules (nf_reject_ipv4 and the nft_reject ones). A trace
with --packets sees REJECTs with the module's frames in their stacks,
through the kprobe on nf_send_reset in kprobe mode (which the kernel arms
again each time the module loads), else through net:net_dev_queue; the
modules go away and come back (at another address, as likely as not)
mid-run, and every RST before, between and after is reported, once, the
module's frames named right each time.

rsttrace names frames when it reads an event (at most 100 ms later, more
on a slow guest): a module unloaded before then cannot be named (bcc
names its addresses after the nearest symbol it still knows), so the test
waits until each phase's events are written before unloading.

This host's kernel has no loadable modules, so the test runs in the VM
suite (scripts/vm-suite) on stock Debian kernels, where a skip fails the
suite (tests/vm/test_vm_suite.py)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import reliability

from rsttrace.lab import traffic
from rsttrace.trace.stacks import base_name

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not os.path.exists("/proc/modules"),
                       reason="this kernel cannot load modules (no "
                              "/proc/modules): scripts/vm-suite runs this "
                              "test on stock kernels"),
]

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
# nft's `reject with tcp reset` in an inet table, and what it needs; in
# the order they can be removed
MODULES = ("nft_reject_inet", "nft_reject_ipv4", "nft_reject_ipv6",
           "nft_reject", "nf_reject_ipv4", "nf_reject_ipv6")


def loaded():
    with open("/proc/modules") as f:
        return {line.split()[0] for line in f}


def reject_modules():
    """The REJECT modules' lines of /proc/modules (name ... address)."""
    with open("/proc/modules") as f:
        return [line.split()[::5] for line in f
                if line.split()[0] in MODULES]


def unload():
    """Remove the REJECT modules; a namespace deleted a moment ago may
    hold its rules' references for a while (netns cleanup is deferred)."""
    deadline = time.monotonic() + 60
    for name in MODULES:
        while name in loaded():
            res = subprocess.run(["rmmod", name], capture_output=True,
                                 text=True)
            if res.returncode == 0:
                break
            assert time.monotonic() < deadline, res.stderr
            time.sleep(0.2)
    assert not set(MODULES) & loaded()


def reject(pair, rounds):
    """`rounds` connections from a REJECTed by an nft rule in b (which
    loads the modules); the rule's table is removed after. [port]"""
    port = traffic.free_port(pair, "b", 4)
    pair.nft("b", "add table inet rsttrace_mod; add chain inet rsttrace_mod "
             "in { type filter hook input priority 0; }; add rule inet "
             "rsttrace_mod in tcp dport %d reject with tcp reset" % port)
    for _ in range(rounds):
        cli = pair.socket("a")
        cli.settimeout(5)
        with pytest.raises(ConnectionRefusedError):
            cli.connect((pair.ipv4["b"], port))
        cli.close()
    pair.nft("b", "delete table inet rsttrace_mod")
    return port


def wait_for_lines(path, count, timeout=120):
    """Until the trace has written `count` lines (TCG guests are slow)."""
    deadline = time.monotonic() + timeout
    while not path.exists() or \
            len(path.read_text().splitlines()) < count:
        assert time.monotonic() < deadline, "fewer than %d lines" % count
        time.sleep(0.1)


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    before = loaded()
    with NamespacePair() as p:
        yield p
    if set(MODULES) & before:           # put back as found
        subprocess.run(["modprobe", "nft_reject_inet"], check=True)
    else:
        unload()


def test_module_unloaded_and_reloaded_during_a_trace(pair, tmp_path):
    rounds = reliability.MODULE_ROUNDS
    subprocess.run(["modprobe", "nft_reject_inet"], check=True)
    path = tmp_path / "cap.jsonl"
    err = open(tmp_path / "err", "w+")
    proc = subprocess.Popen([RSTTRACE, "trace", "--json", "--packets", "-o",
                             str(path), "--netns", pair.names["a"],
                             "--netns", pair.names["b"]],
                            stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 300       # bcc compiles slowly in VMs
        while "tracing in" not in open(err.name).read():
            assert proc.poll() is None, open(err.name).read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        modules = [reject_modules()]
        before = reject(pair, rounds)
        # read (and named) while the modules are loaded: frames of a
        # module gone before its events are read cannot be named
        wait_for_lines(path, 2 * rounds)
        unload()
        # back, with nothing traced while they were gone
        subprocess.run(["modprobe", "nft_reject_inet"], check=True)
        modules.append(reject_modules())
        after = reject(pair, rounds)
        wait_for_lines(path, 4 * rounds)
        unload()
        closed = [traffic.closed_port(pair, 4) for _ in range(rounds)]
        wait_for_lines(path, 6 * rounds)
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=60)
    stderr = open(err.name).read()
    assert rc == 0 and "Traceback" not in stderr, stderr
    # kprobe mode hooks the module's own function, which the kernel arms
    # each time the module loads (trace/module_probes.py); other modes see
    # REJECTs on the packet hook only
    mode, attached = re.search(r"tracing in (\w+) mode \(([^)]*)\)",
                               stderr).groups()
    hook = "nf_send_reset" if mode == "kprobe" else "net:net_dev_queue"
    assert hook in attached.split(", "), stderr
    # (json, not the schema check: the guest images have no jsonschema)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for phase, port in (("loaded before the trace", before),
                        ("loaded again", after)):
        sent = [r for r in records if r["kind"] == "sent" and
                r["sport"] == port]
        received = [r for r in records if r["kind"] == "received" and
                    r["sport"] == port]         # the RST's direction
        assert len(sent) == len(received) == rounds, (phase, records)
        for r in sent:
            assert r["hook"] == hook, (phase, r)
            assert r["cause"] == "firewall-reject", r
            # named after the module functions on the path, not after
            # whatever the symbol table had below their addresses
            frames = [base_name(f) for f in r["stack"]]
            assert {"nf_send_reset", "nft_reject_inet_eval"} <= set(frames) \
                and "nf_send_reset6" not in frames, (phase, r["stack"],
                                                      modules)
    for p in closed:
        mine = [r for r in records if {(r["saddr"], r["sport"]),
                                       (r["daddr"], r["dport"])} ==
                {(p.saddr, p.sport), (p.daddr, p.dport)}]
        assert sorted(r["kind"] for r in mine) == ["received", "sent"], p
    assert len(records) == 6 * rounds
