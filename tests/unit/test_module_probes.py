"""Kprobe events on module functions left by a killed run are removed by
the next (rsttrace.trace.module_probes), and a scenario puts the host's
modules back as it found them (rsttrace.lab.kmods). Kernel side: the VM
suite."""

import os

from rsttrace.kernel import modules
from rsttrace.lab import kmods
from rsttrace.trace import module_probes


def a_dead_pid():
    pid = 4194000
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    return pid


def test_only_events_of_gone_runs_are_removed(tmp_path, monkeypatch):
    dead, alive = a_dead_pid(), os.getpid()
    (tmp_path / "kprobe_events").write_text(
        "p:rsttrace_%d_0/nf_send_reset nf_reject_ipv4:nf_send_reset\n"
        "p:rsttrace_%d_1/nf_send_reset6 nf_reject_ipv6:nf_send_reset6\n"
        "p:rsttrace_%d_0/nf_send_reset nf_reject_ipv4:nf_send_reset\n"
        "p:kprobes/p_tcp_reset_bcc_%d tcp_reset\n"
        "r:rsttrace_x/odd tcp_reset\n" % (dead, dead, alive, dead))
    written, said = [], []
    monkeypatch.setattr(module_probes, "_write",
                        lambda tracefs, line: written.append(line))
    removed = module_probes.remove_stale(str(tmp_path), said.append)
    assert written == ["-:rsttrace_%d_0/nf_send_reset" % dead,
                       "-:rsttrace_%d_1/nf_send_reset6" % dead]
    assert removed == [w[2:] for w in written]
    assert said == ["removed kprobe events %s, left by a run that is gone "
                    "(killed before it could remove them)"
                    % ", ".join(removed)]


def test_an_event_the_kernel_will_not_remove_stays(tmp_path, monkeypatch):
    (tmp_path / "kprobe_events").write_text(
        "p:rsttrace_%d_0/nf_send_reset nf_reject_ipv4:nf_send_reset\n"
        % a_dead_pid())

    def busy(tracefs, line):
        raise OSError(16, "Device or resource busy")
    monkeypatch.setattr(module_probes, "_write", busy)
    said = []
    assert module_probes.remove_stale(str(tmp_path), said.append) == []
    assert said == []


def test_no_tracefs_no_stale_events(tmp_path):
    assert module_probes.remove_stale(str(tmp_path / "none"), print) == []


def test_modules_are_put_back_as_found(monkeypatch):
    loaded = {"nf_reject_ipv4", "nf_tables"}
    ran = []

    def run(*cmd):
        ran.append(" ".join(cmd))
        if cmd[0] == "rmmod":
            loaded.discard(cmd[1])
        else:
            loaded.add(cmd[1])
        return True
    monkeypatch.setattr(modules, "loaded", lambda: frozenset(loaded))
    monkeypatch.setattr(kmods, "_run", run)
    names = ("nft_reject_inet", "nf_reject_ipv4", "nf_reject_ipv6")
    with kmods.kept(names):
        assert kmods.unload(names) == ["nf_reject_ipv4"]
        loaded |= {"nft_reject_inet", "nf_reject_ipv4", "nf_reject_ipv6"}
    assert ran == ["rmmod nf_reject_ipv4", "rmmod nft_reject_inet",
                   "rmmod nf_reject_ipv6"]
    assert loaded == {"nf_reject_ipv4", "nf_tables"}
    ran.clear()
    with kmods.kept(names):
        kmods.unload(names)
    assert ran == ["rmmod nf_reject_ipv4", "modprobe nf_reject_ipv4"]
    assert loaded == {"nf_reject_ipv4", "nf_tables"}


def test_unload_waits_for_nf_tables_to_let_go(monkeypatch):
    """A deleted rule's modules are released after an RCU grace period:
    rmmod fails at first, then works."""
    loaded = {"nft_reject_inet", "nf_reject_ipv4"}
    busy = {"nft_reject_inet": 2}
    ran = []

    def run(*cmd):
        ran.append(cmd[1])
        if busy.get(cmd[1], 0):
            busy[cmd[1]] -= 1
            return False
        loaded.discard(cmd[1])
        return True
    monkeypatch.setattr(modules, "loaded", lambda: frozenset(loaded))
    monkeypatch.setattr(kmods, "_run", run)
    names = ("nft_reject_inet", "nf_reject_ipv4")
    assert kmods.unload(names) == ["nf_reject_ipv4"]        # no patience
    loaded.add("nf_reject_ipv4")
    busy["nft_reject_inet"] = 2
    assert kmods.unload(names, patience=2.0) == list(names)
    assert loaded == set()
