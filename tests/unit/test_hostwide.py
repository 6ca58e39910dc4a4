"""Host-wide settings are recorded before a scenario changes them and put
back by the next run when the one that changed them is gone
(rsttrace.lab.hostwide); against a fake /proc/sys."""

import json
import os
import subprocess

import pytest

from rsttrace.errors import RsttraceError
from rsttrace.lab import hostwide, processes

NAME = "net.ipv4.tcp_max_orphans"


@pytest.fixture()
def host(tmp_path, monkeypatch):
    """(state directory, fake sysctl file at 4096)."""
    sysctl = tmp_path / "proc" / "net" / "ipv4" / "tcp_max_orphans"
    sysctl.parent.mkdir(parents=True)
    sysctl.write_text("4096\n")
    monkeypatch.setattr(hostwide, "PROC_SYS", str(tmp_path / "proc"))
    return str(tmp_path / "state"), sysctl


def state_of(directory, pid, value="4096", start=None):
    os.mkdir(directory, 0o700)
    path = os.path.join(directory, hostwide.PREFIX + NAME)
    with open(path, "w") as f:
        json.dump({"sysctl": NAME, "value": value, "pid": pid,
                   "start": processes.start_ticks(pid) if start is None
                   else start}, f)
    return path


def gone_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_kept_records_then_removes_the_state(host):
    state, sysctl = host
    path = os.path.join(state, hostwide.PREFIX + NAME)
    said = []
    with hostwide.kept(NAME, said.append, state):
        rec = json.load(open(path))
        assert rec["value"] == "4096" and rec["pid"] == os.getpid()
        assert os.stat(state).st_mode & 0o777 == 0o700
        assert os.stat(path).st_mode & 0o777 == 0o600
        sysctl.write_text("0")
    assert not os.path.exists(path)
    assert sysctl.read_text().strip() == "4096"     # put back
    assert said == ["rsttrace: put %s back to 4096" % NAME]


def test_a_gone_runs_change_is_restored(host):
    state, sysctl = host
    path = state_of(state, gone_pid(), start=1)
    sysctl.write_text("0")
    said = []
    hostwide.restore_stale(said.append, state)
    assert sysctl.read_text().strip() == "4096"
    assert not os.path.exists(path)
    assert len(said) == 1 and "restored %s to 4096" % NAME in said[0]


def test_a_live_runs_change_is_left_alone(host):
    state, sysctl = host
    path = state_of(state, os.getpid())
    sysctl.write_text("0")
    hostwide.restore_stale(pytest.fail, state)
    assert sysctl.read_text().strip() == "0"
    assert os.path.exists(path)
    with pytest.raises(RsttraceError, match="is changing"):
        with hostwide.kept(NAME, pytest.fail, state):
            pass


def test_a_reused_pid_is_not_the_run(host):
    state, sysctl = host
    state_of(state, os.getpid(), start=processes.start_ticks(
        os.getpid()) - 1)
    sysctl.write_text("0")
    said = []
    hostwide.restore_stale(said.append, state)
    assert sysctl.read_text().strip() == "4096" and said


def test_kept_after_a_killed_run_restores_first(host):
    """The old value recorded is the real one, not the killed run's 0."""
    state, sysctl = host
    path = state_of(state, gone_pid(), start=1)
    sysctl.write_text("0")
    said = []
    with hostwide.kept(NAME, said.append, state):
        assert json.load(open(path))["value"] == "4096"
    assert sysctl.read_text().strip() == "4096"
    assert "restored" in said[0]


def test_a_shared_state_directory_is_refused(host):
    state, _ = host
    os.mkdir(state, 0o755)
    with pytest.raises(RsttraceError, match="not a directory private"):
        hostwide.restore_stale(pytest.fail, state)


def test_a_symlinked_state_directory_is_refused(host, tmp_path):
    state, _ = host
    os.mkdir(tmp_path / "elsewhere", 0o700)
    os.symlink(tmp_path / "elsewhere", state)
    with pytest.raises(RsttraceError, match="not a directory private"):
        hostwide.restore_stale(pytest.fail, state)


def test_a_planted_symlink_is_not_followed(host, tmp_path):
    state, sysctl = host
    os.mkdir(state, 0o700)
    target = tmp_path / "target"
    target.write_text(json.dumps({"sysctl": NAME, "value": "1",
                                  "pid": gone_pid(), "start": 1}))
    os.symlink(target, os.path.join(state, hostwide.PREFIX + NAME))
    said = []
    hostwide.restore_stale(said.append, state)
    assert sysctl.read_text().strip() == "4096"      # not written
    assert "left alone" in said[0]
    with pytest.raises(RsttraceError, match="not a state file"):
        with hostwide.kept(NAME, said.append, state):
            pass


@pytest.mark.parametrize("value", ["0; reboot", "", "1\n2"])
def test_only_numbers_are_written(host, value):
    state, sysctl = host
    path = state_of(state, gone_pid(), value=value, start=1)
    said = []
    hostwide.restore_stale(said.append, state)
    assert sysctl.read_text().strip() == "4096"
    assert os.path.exists(path) and "left alone" in said[0]
