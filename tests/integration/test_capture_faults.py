"""Faults injected into a running `rsttrace trace -o FILE` while real RSTs
are provoked between namespaces: kill -9, SIGTERM in a storm, a disk that
fills. What FILE holds afterwards is checked line by line against the
record schema; the numbers are tests/reliability.py's (docs/reliability.md
is rendered from them)."""

import os
import signal
import subprocess
import sys
import time

import pytest

import reliability
from schema import check_line

from rsttrace.lab import craft, traffic
from rsttrace.output import rotation

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
EVENT_KINDS = ("sent", "received", "challenge_ack")

# SYNs from distinct source ports, as fast as a raw socket sends them,
# until killed: each draws an RST from the closed port.
STORM = """
import socket, sys
from rsttrace.lab.craft import SYN, tcp_segment
src, dst, port, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
i = 0
while True:
    raw.sendto(tcp_segment(src, dst, first + i % 20000, port, i, 0, SYN),
               (dst, 0))
    i += 1
"""


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


def started(argv, err_path):
    """A process, once it said it is tracing on stderr (a file: a pipe
    nobody reads could block it)."""
    err = open(err_path, "w+")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 120
    while "tracing in" not in open(err_path).read():
        assert proc.poll() is None, open(err_path).read()
        assert time.monotonic() < deadline, "did not attach"
        time.sleep(0.05)
    return proc


def file_lines(paths):
    """The lines of these files (gzipped or not), in order."""
    import gzip
    out = []
    for path in paths:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as f:
            text = f.read()
        assert text == "" or text.endswith("\n"), path
        out += text.splitlines()
    return out


def capture_set(path):
    d, name = os.path.split(path)
    return [os.path.join(d, e) for _, _, e in rotation.members(
        name, os.listdir(d))]


def wait_for_lines(path, count, timeout=20):
    """Until the capture at `path` holds `count` lines, read as `tail -f`
    would while the run goes on."""
    deadline = time.monotonic() + timeout
    while True:
        got = len(file_lines(capture_set(path)))
        if got >= count:
            return got
        assert time.monotonic() < deadline, "%d of %d lines" % (got, count)
        time.sleep(0.05)


def ends(p):
    return {(p.saddr, p.sport), (p.daddr, p.dport)}


@pytest.mark.parametrize("rotate", [[], ["-C", "2k", "--compress"]],
                         ids=["one-file", "rotated-compressed"])
def test_kill9_mid_trace_keeps_every_event_read(pair, tmp_path, rotate):
    path = str(tmp_path / "cap.jsonl")
    proc = started([RSTTRACE, "trace", "--json", "-o", path, "--netns",
                    pair.names["a"], "--netns", pair.names["b"]] + rotate,
                   tmp_path / "err")
    try:
        first = [traffic.closed_port(pair, 4)
                 for _ in range(reliability.KILL_ROUNDS)]
        # as it goes: every line is in FILE while the run is on
        assert wait_for_lines(path, 2 * len(first)) == 2 * len(first)
        time.sleep(0.3)
        later = [traffic.closed_port(pair, 4)
                 for _ in range(reliability.KILL_ROUNDS)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    files = capture_set(path)
    if rotate:      # the last files closed may not be compressed yet
        assert len(files) > 3 and files[0].endswith(".gz")
        assert not files[-1].endswith(".gz")
    records = [check_line(line) for line in file_lines(files)]
    assert all(r["kind"] in EVENT_KINDS for r in records)
    got = [{(r["saddr"], r["sport"]), (r["daddr"], r["dport"])}
           for r in records]
    for p in first:                 # sent by b and received by a
        assert got.count(ends(p)) == 2, p
    assert 2 * len(first) <= len(records) <= 2 * (len(first) + len(later))
    provoked = [ends(q) for q in first + later]
    assert all(g in provoked for g in got)
    res = subprocess.run([RSTTRACE, "report", "--json", path],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert '"events": %d' % len(records) in res.stdout


def test_sigterm_mid_storm_writes_everything_read(pair, tmp_path):
    path = str(tmp_path / "cap.jsonl")
    port = traffic.free_port(pair, "b", 4)
    proc = started([RSTTRACE, "trace", "--json", "--summary", "-o", path,
                    "--netns", pair.names["b"]], tmp_path / "err")
    senders = [subprocess.Popen(
        ["ip", "netns", "exec", pair.names["a"], sys.executable, "-c",
         STORM, pair.ipv4["a"], pair.ipv4["b"], str(port), str(first)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for first in (10000, 40000)]
    try:
        time.sleep(reliability.STORM_SECONDS)
        assert all(s.poll() is None for s in senders)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)      # a hang guard, not a speed goal
    finally:
        for s in senders:
            s.kill()
            s.wait()
    err = open(tmp_path / "err").read()
    assert rc == 0, err
    assert "Traceback" not in err
    records = [check_line(line) for line in file_lines([path])]
    summary = records[-1]
    assert summary["kind"] == "summary"
    events = [r for r in records if r["kind"] == "sent"]
    lost = sum(r["count"] for r in records if r["kind"] == "lost")
    assert len(events) == summary["events"] > 1000
    assert summary["lost"] == lost
    assert summary["events"] + summary["lost"] == summary["kernel_events"]
    assert all(r["cause"] == "no-listener" and r["sport"] == port
               for r in events)


def test_full_disk_mid_run_keeps_whole_lines(pair, tmp_path):
    """The capture's directory is a small tmpfs mounted in a mount
    namespace of the run's own (gone with it); the file is copied out
    before the namespace goes."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    saved = tmp_path / "saved.jsonl"
    path = mnt / "cap.jsonl"
    script = ('mount -t tmpfs -o size=%dk rsttrace-full "$1" || exit 99; '
              '"$2" trace --json -o "$3" --netns "$4"; rc=$?; '
              'cp "$3" "$5"; exit $rc' % reliability.FULL_DISK_KIB)
    proc = started(["unshare", "--mount", "--propagation", "private", "sh",
                    "-c", script, "sh", str(mnt), RSTTRACE, str(path),
                    pair.names["b"], str(saved)], tmp_path / "err")
    port = traffic.free_port(pair, "b", 4)
    craft.syn_burst(pair, "a", "b", port, reliability.FULL_DISK_SYNS)
    rc = proc.wait(timeout=60)
    err = open(tmp_path / "err").read().splitlines()
    assert rc == 1, err
    errors = [line for line in err if line.startswith("rsttrace: error:")]
    assert len(errors) == 1 and not [l for l in err if "Traceback" in l]
    prefix = ("rsttrace: error: cannot write %s (No space left on device; "
              % path)
    assert errors[0].startswith(prefix), errors[0]
    unwritten = int(errors[0][len(prefix):].split()[0])
    assert errors[0].endswith(
        " lines read not written, the lines before are whole): free space "
        "there, or choose another -o FILE")
    assert os.listdir(mnt) == []          # the tmpfs was the run's alone
    records = [check_line(line) for line in file_lines([str(saved)])]
    assert 0 < len(records) and saved.stat().st_size <= \
        reliability.FULL_DISK_KIB * 1024
    assert all(r["kind"] == "sent" and r["sport"] == port for r in records)
    assert unwritten > 0
    assert len(records) + unwritten <= reliability.FULL_DISK_SYNS
