"""`trace -w` and `convert -w` as a user runs them: -w alone writes only
the capture (the summary still goes to standard output), and the capture
file is opened by the same rules as -o: user nobody's symlink planted in a
sticky world-writable directory is refused and what it points to is left
as it was."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from pcaptools import ready_line, tshark
from rsttrace.lab import traffic

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
NOBODY = 65534
DATA = os.path.join(os.path.dirname(__file__), "..", "data")


@pytest.fixture()
def shared():
    """A sticky world-writable directory like /tmp, and a victim file
    outside it; both removed after."""
    d = tempfile.mkdtemp(prefix="rsttrace-shared-")
    os.chmod(d, 0o1777)
    private = tempfile.mkdtemp(prefix="rsttrace-private-")
    victim = os.path.join(private, "victim")
    with open(victim, "wb") as f:
        f.write(b"precious\n")
    yield d, victim
    shutil.rmtree(d)
    shutil.rmtree(private)


def plant(victim, link):
    subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                    "--clear-groups", "ln", "-s", victim, link], check=True,
                   timeout=30)


@pytest.mark.parametrize("command", [
    ["trace", "-w"],
    ["convert", os.path.join(DATA, "events-6.1.0-50-amd64.jsonl"), "-w"],
])
def test_nobodys_symlink_is_refused(shared, command):
    d, victim = shared
    link = os.path.join(d, "rst.pcapng")
    plant(victim, link)
    r = subprocess.run([RSTTRACE, *command, link], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("rsttrace: error: %s is a symlink owned by "
                               "uid 65534" % link), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    with open(victim, "rb") as f:
        assert f.read() == b"precious\n"
    assert os.listdir(d) == ["rst.pcapng"]


def test_w_alone_writes_only_the_capture_and_the_summary(tmp_path):
    from rsttrace.lab.netns import NamespacePair
    out = tmp_path / "rst.pcapng"
    with NamespacePair() as pair:
        proc = subprocess.Popen(
            [RSTTRACE, "trace", "-w", str(out), "--summary", "--netns",
             pair.names["a"], "--netns", pair.names["b"]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready_line(proc, "tracing in")
        p = traffic.closed_port(pair, 4)
        traffic.settle(0.3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    # no rows: the summary alone
    assert stdout.startswith("2 events, 0 lost (2 matched in the kernel)")
    assert "cause:" not in stdout and p.daddr not in stdout
    packets = tshark(out)
    assert len(packets) == 2
    assert {int(x["tcp.srcport"][0]) for x in packets} == {p.sport}


def test_expression_filters_summary_only_mode_too():
    """--summary-only counts in the kernel after the same filters."""
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as pair:
        proc = subprocess.Popen(
            [RSTTRACE, "trace", "--summary-only", "--json", "--netns",
             pair.names["a"], "--netns", pair.names["b"], "ip6"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = ready_line(proc, "counting in the kernel")
        assert "expression 'ip6'" in line
        traffic.closed_port(pair, 4)
        traffic.closed_port(pair, 6)
        traffic.settle(0.3)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["events"] == 2 and summary["rows"], summary
    assert {r["family"] for r in summary["rows"]} == {6}
