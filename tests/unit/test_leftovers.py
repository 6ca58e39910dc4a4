"""Which rsttrace namespaces count as left behind by a gone run: never a
live run's, always a dead or reused pid's (rsttrace.lab.leftovers)."""

import os
import subprocess
import time

from rsttrace.lab import leftovers, processes


def make(directory, name, made_at):
    path = directory / name
    path.write_text("")
    os.utime(path, (made_at, made_at))


def dead_pid():
    """A pid that just exited (and was reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_live_runs_namespaces_are_kept(tmp_path):
    me = os.getpid()
    make(tmp_path, "rsttrace-%d-0-a" % me, time.time())
    make(tmp_path, "rsttrace-%d-0-b" % me, time.time())
    assert leftovers.stale_namespaces(str(tmp_path)) == {}


def test_a_gone_runs_namespaces_are_stale(tmp_path):
    pid = dead_pid()
    for side in "ab":
        make(tmp_path, "rsttrace-%d-3-%s" % (pid, side), time.time())
    assert leftovers.stale_namespaces(str(tmp_path)) == {
        pid: ["rsttrace-%d-3-a" % pid, "rsttrace-%d-3-b" % pid]}


def test_a_reused_pid_does_not_keep_them(tmp_path):
    """Made an hour before this process started: its pid was reused."""
    me = os.getpid()
    make(tmp_path, "rsttrace-%d-0-a" % me, processes.started_at(me) - 3600)
    assert leftovers.stale_namespaces(str(tmp_path)) == {
        me: ["rsttrace-%d-0-a" % me]}


def test_a_zombie_is_gone(tmp_path):
    proc = subprocess.Popen(["true"])
    deadline = time.time() + 10
    while processes.start_ticks(proc.pid) is not None:   # exited, unreaped
        assert time.time() < deadline
        time.sleep(0.01)
    assert os.path.exists("/proc/%d" % proc.pid)
    make(tmp_path, "rsttrace-%d-0-a" % proc.pid, time.time())
    assert list(leftovers.stale_namespaces(str(tmp_path))) == [proc.pid]
    proc.wait()


def test_other_names_are_not_ours(tmp_path):
    pid = dead_pid()
    for name in ("rsttrace-%d-0-c" % pid, "rsttrace-%d-a" % pid,
                 "xrsttrace-%d-0-a" % pid, "rsttrace-bench-%d-a" % pid,
                 "rsttrace-%d-0-a.tmp" % pid):
        make(tmp_path, name, time.time())
    assert leftovers.stale_namespaces(str(tmp_path)) == {}
