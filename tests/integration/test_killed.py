"""Nothing left behind by a run killed with SIGKILL: a tracer's BPF
programs, links and maps go with its file descriptors; the namespaces of
`scenarios run` (and the veths, nft tables and sysctls inside them) and a
host-wide sysctl it changed are cleaned up by the next run, and a live
run's are not touched."""

import os
import signal
import subprocess
import sys
import time

import pytest

from bpf_objects import bpf_ids, held_bpf_ids
from rsttrace.kernel import features
from rsttrace.lab import hostwide

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
NETNS_DIR = "/var/run/netns"


def wait_for(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


def started(argv, ready, **kw):
    """A process, once it said `ready` on stderr (which goes to a file:
    a pipe nobody reads could block it)."""
    err = open(kw.pop("err_path"), "w+")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                            text=True, **kw)
    wait_for("%r from %s" % (ready, " ".join(argv[1:3])),
             lambda: ready in open(err.name).read() or proc.poll() is not None)
    assert proc.poll() is None, open(err.name).read()
    return proc


def kill9(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


# --packets in tracepoint mode also watches dropped packets (TIME_WAIT
# kills) where skb:kfree_skb names the socket (6.11+)
DROP = {"on_tp_kfree_skb"} if "rx_sk" in (
    features.tracepoint_format("skb", "kfree_skb") or "") else set()


@pytest.mark.parametrize("args,programs", [
    ([], {"on_tp_tcp_send_reset", "on_tp_tcp_receive_reset",
          "on_sock_set_state"}),
    (["--packets"], {"on_tp_tcp_send_reset", "on_tp_tcp_receive_reset",
                     "on_tp_net_dev_queue", "on_sock_set_state"} | DROP),
    (["--summary-only"], {"on_tp_tcp_send_reset",
                          "on_tp_tcp_receive_reset"}),
], ids=["default", "packets", "summary-only"])
def test_killed_tracer_leaves_no_bpf(tmp_path, args, programs):
    proc = started([RSTTRACE, "trace", "-o", "/dev/null"] + args,
                   " in tracepoint mode", err_path=tmp_path / "err")
    try:
        held = held_bpf_ids(proc.pid)
        loaded = bpf_ids()
        # ours are loaded, with the names bcc gives them (the C functions)
        assert {loaded["prog"][i] for i in held["prog"]} == programs
        assert held["link"] and held["map"]
        assert held["link"] <= set(loaded["link"])
    finally:
        kill9(proc)                     # never left running, even failed

    def none_left():
        now = bpf_ids()
        return all(not held[kind] & set(now[kind]) for kind in held)
    wait_for("the kernel to free the killed tracer's BPF objects",
             none_left, timeout=10)


def namespaces_of(pid):
    prefix = "rsttrace-%d-" % pid
    return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))


def netns_held_by_a_process(inodes):
    """Those of `inodes` some process is still in."""
    held = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                held.add(os.stat("/proc/%s/ns/net" % pid).st_ino)
            except OSError:
                pass
    return held & inodes


def test_killed_scenarios_run_is_cleaned_up_by_the_next(tmp_path):
    from rsttrace.lab.netns import NamespacePair
    # keepalive-timeout: an nft table in b drops input while keepalive
    # probes go unanswered for a few seconds; killed then.
    proc = started([RSTTRACE, "scenarios", "run", "keepalive-timeout"],
                   "scenario keepalive-timeout", err_path=tmp_path / "err")
    names = wait_for("the scenario's namespaces",
                     lambda: len(namespaces_of(proc.pid)) == 2
                     and namespaces_of(proc.pid))
    wait_for("its nft table", lambda: "rsttrace_in" in subprocess.run(
        ["ip", "netns", "exec", names[1], "nft", "list", "tables"],
        capture_output=True, text=True).stdout, timeout=20)
    inodes = {os.stat(os.path.join(NETNS_DIR, n)).st_ino for n in names}
    kill9(proc)
    assert namespaces_of(proc.pid) == names         # left behind
    with NamespacePair() as live:                   # a live run's
        res = subprocess.run([RSTTRACE, "scenarios", "run", "no-listener"],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert ("rsttrace: removed network namespaces %s, left by process "
                "%d" % (", ".join(names), proc.pid)) in res.stderr
        assert namespaces_of(proc.pid) == []
        assert all(os.path.exists(os.path.join(NETNS_DIR, n))
                   for n in live.names.values())
    # no process is in them: the kernel frees them, and the veth pair,
    # nft table and sysctls inside with them
    assert not netns_held_by_a_process(inodes)


CHANGER = """
import os, sys, time
from rsttrace.kernel import features
from rsttrace.lab import hostwide
name = sys.argv[1]
with hostwide.kept(name, print):
    hostwide.write_sysctl(name, str(int(hostwide.read_sysctl(name)) + 1))
    print("changed", flush=True)
    time.sleep(600)
"""


def test_killed_host_wide_change_is_restored_by_the_next_run(tmp_path):
    """What memory-pressure does with --host-wide (tcp_max_orphans 0 for
    a moment) would hurt this host, so a helper changes the same sysctl
    under the same guard by a harmless step (+1) and is killed there."""
    name = "net.ipv4.tcp_max_orphans"
    old = hostwide.read_sysctl(name)
    state = os.path.join(hostwide.STATE_DIR, hostwide.PREFIX + name)
    try:
        out = tmp_path / "out"
        with open(out, "w") as f:
            proc = subprocess.Popen([sys.executable, "-c", CHANGER, name],
                                    stdout=f, stderr=subprocess.STDOUT)
        wait_for("the change", lambda: "changed" in out.read_text()
                 or proc.poll() is not None)
        kill9(proc)
        assert hostwide.read_sysctl(name) == str(int(old) + 1), \
            out.read_text()
        assert os.path.exists(state)
        res = subprocess.run([RSTTRACE, "scenarios", "run", "no-listener"],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert ("rsttrace: restored %s to %s: run %d changed it and was "
                "killed" % (name, old, proc.pid)) in res.stderr
        assert hostwide.read_sysctl(name) == old
        assert not os.path.exists(state)
    finally:
        hostwide.write_sysctl(name, old)
        if os.path.exists(state):
            os.unlink(state)


def test_host_wide_scenario_runs_under_the_guard(monkeypatch):
    """run_scenarios records a host-wide scenario's sysctl before it runs
    and puts it back after, if the scenario did not (memory-pressure
    itself is not run here: see above)."""
    import copy

    from rsttrace.lab.catalogue import HOST_WIDE_ENV, by_name
    from rsttrace.lab.run import run_scenarios
    name = "net.ipv4.tcp_max_orphans"
    old = hostwide.read_sysctl(name)
    state = os.path.join(hostwide.STATE_DIR, hostwide.PREFIX + name)
    seen = []

    def changes_and_forgets(pair):
        seen.append(os.path.exists(state))
        hostwide.write_sysctl(name, str(int(old) + 1))

    sc = copy.copy(by_name(["no-listener"])[0])
    sc.fn, sc.host_wide = changes_and_forgets, name
    monkeypatch.setenv(HOST_WIDE_ENV, "1")
    said = []
    try:
        run_scenarios([sc], progress=said.append)
    finally:
        value = hostwide.read_sysctl(name)
        hostwide.write_sysctl(name, old)
    assert seen == [True]
    assert value == old
    assert "rsttrace: put %s back to %s" % (name, old) in said
    assert not os.path.exists(state)
