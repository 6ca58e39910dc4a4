"""`rsttrace trace` and `rsttrace doctor` run as a user runs them: the
installed command in a subprocess, real BPF, RSTs provoked between two
namespaces while it runs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from schema import check_line

from rsttrace.lab import traffic

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")


class Running:
    """`rsttrace trace ...` in the background, ready once it says so."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([RSTTRACE, "trace", *args],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        banner = "counting in" if "--summary-only" in args else "tracing in"
        if banner not in line:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("rsttrace did not start: %s%s%s"
                                 % (line, err, out))
        self.banner = line

    def stop(self, sig=signal.SIGINT):
        traffic.settle(0.2)
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, out, err

    def wait(self):
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


def jsonl(text):
    """The records of `trace --json` output, each checked against
    docs/record.schema.json."""
    return [check_line(line) for line in text.splitlines() if line.strip()]


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


def ns_args(pair):
    return ["--netns", pair.names["a"], "--netns", pair.names["b"]]


def events(records):
    return [r for r in records if r["kind"] in ("sent", "received",
                                                "challenge_ack")]


def test_trace_json_and_summary(pair):
    run = Running("--json", "--summary", *ns_args(pair))
    p = traffic.closed_port(pair, 4)
    rc, out, err = run.stop()
    assert rc == 0, err
    recs = jsonl(out)
    evs = events(recs)
    assert {r["kind"] for r in evs} == {"sent", "received"}
    assert all(r["sport"] in (p.sport, p.dport) for r in evs)
    summary = [r for r in recs if r["kind"] == "summary"]
    assert len(summary) == 1 and recs[-1] is summary[0]
    assert summary[0]["events"] == 2 and summary[0]["lost"] == 0
    assert summary[0]["by_kind"] == {"sent": 1, "received": 1}


def test_port_filter_drops_other_ports(pair):
    keep = traffic.free_port(pair, "b", 4)
    run = Running("--json", "--port", str(keep), *ns_args(pair))
    cli = pair.socket("a")
    cli.settimeout(5)
    with pytest.raises(ConnectionRefusedError):
        cli.connect((pair.ipv4["b"], keep))
    other = traffic.closed_port(pair, 4)      # a different, free port
    assert other.sport != keep
    rc, out, err = run.stop()
    evs = events(jsonl(out))
    assert len(evs) == 2, evs
    assert all(keep in (r["sport"], r["dport"]) for r in evs)


def test_family_filter(pair):
    run = Running("--json", "-6", *ns_args(pair))
    traffic.closed_port(pair, 4)
    p6 = traffic.closed_port(pair, 6)
    rc, out, err = run.stop()
    evs = events(jsonl(out))
    assert len(evs) == 2 and {r["family"] for r in evs} == {6}
    assert {r["saddr"] for r in evs} <= {p6.saddr, p6.daddr}


def test_host_filter(pair):
    """--host on the client's address keeps both events of its RST
    (it is the destination of one and the source of the other) and
    drops an RST between other addresses (IPv6 here)."""
    run = Running("--json", "--host", pair.ipv4["a"], *ns_args(pair))
    traffic.closed_port(pair, 6)
    p4 = traffic.closed_port(pair, 4)
    rc, out, err = run.stop()
    evs = events(jsonl(out))
    assert len(evs) == 2
    assert all(pair.ipv4["a"] in (r["saddr"], r["daddr"]) for r in evs)
    assert {r["sport"] for r in evs} <= {p4.sport, p4.dport}


def test_netns_filter(pair):
    """Only namespace b: its sent RST, not a's received one."""
    run = Running("--json", "--netns", pair.names["b"])
    traffic.closed_port(pair, 4)
    rc, out, err = run.stop()
    evs = events(jsonl(out))
    assert [r["kind"] for r in evs] == ["sent"]
    assert evs[0]["netns"] == pair.inode("b")


def test_pid_and_comm_filters(pair):
    """Both RSTs of a connect to a closed port run on this process's
    CPU time (the SYN's softirq runs in its context on a veth pair), so a
    pid or comm filter for us keeps them and one for init drops them."""
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    keep = Running("--json", "--pid", str(os.getpid()), *ns_args(pair))
    drop = Running("--json", "--pid", "1", *ns_args(pair))
    by_comm = Running("--json", "--comm", comm, *ns_args(pair))
    traffic.closed_port(pair, 4)
    kept = events(jsonl(keep.stop()[1]))
    dropped = events(jsonl(drop.stop()[1]))
    commed = events(jsonl(by_comm.stop()[1]))
    assert len(kept) == 2 and all(r["pid"] == os.getpid() for r in kept)
    assert dropped == []
    assert len(commed) == 2 and all(r["comm"] == comm for r in commed)


def test_count_and_duration_stop_by_themselves(pair):
    run = Running("--json", "--count", "1", *ns_args(pair))
    traffic.closed_port(pair, 4)
    rc, out, err = run.wait()
    assert rc == 0 and len(events(jsonl(out))) == 1

    t0 = time.monotonic()
    run = Running("--json", "--duration", "1", *ns_args(pair))
    rc, out, err = run.wait()
    assert rc == 0 and events(jsonl(out)) == []
    assert time.monotonic() - t0 < 15


def test_sigterm_flushes_summary(pair):
    run = Running("--summary", *ns_args(pair))
    traffic.linger_zero(pair, 4)
    rc, out, err = run.stop(signal.SIGTERM)
    assert rc == 0, err
    assert "tcp_send_active_reset" in out          # the stack, indented
    assert "2 events, 0 lost" in out


def test_ctrl_c_right_after_the_banner_stops_cleanly(pair):
    """The banner says Ctrl-C to stop: from then on a SIGINT ends the run
    with its summary (it used to abort the start-up still in progress)."""
    for args, summary in ((["--summary"], "0 events, 0 lost"),
                          (["--summary-only", "--json"], '"kind":"summary"')):
        run = Running(*args, *ns_args(pair))
        run.proc.send_signal(signal.SIGINT)
        out, err = run.proc.communicate(timeout=30)
        assert run.proc.returncode == 0, err
        assert "Aborted" not in err
        assert summary in out


def test_output_file_written_whole(pair, tmp_path):
    path = tmp_path / "rst.jsonl"
    run = Running("--json", "-o", str(path), *ns_args(pair))
    traffic.closed_port(pair, 4)
    rc, out, err = run.stop()
    assert rc == 0 and out == ""
    assert len(events(jsonl(path.read_text()))) == 2
    assert os.listdir(tmp_path) == ["rst.jsonl"]


def test_no_stack_omits_stack(pair):
    run = Running("--json", "--no-stack", *ns_args(pair))
    traffic.closed_port(pair, 4)
    evs = events(jsonl(run.stop()[1]))
    assert len(evs) == 2 and all("stack" not in r for r in evs)


def test_doctor_reports_this_kernel():
    out = subprocess.run([RSTTRACE, "doctor", "--json"], capture_output=True,
                         text=True, check=True).stdout
    doc = json.loads(out)
    assert doc["checks"]["kernel"] == os.uname().release
    assert doc["checks"]["BTF"] is os.path.exists("/sys/kernel/btf/vmlinux")
    kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe/type")
    assert doc["checks"]["kprobes"] is kprobes
    hooks = {h["hook"]: h for h in doc["hooks"]}
    assert set(hooks) >= {"tcp_v4_send_reset", "tcp_v6_send_reset",
                          "tcp_send_active_reset", "tcp_reset",
                          "tcp_send_challenge_ack", "tcp:tcp_send_reset",
                          "tcp:tcp_receive_reset"}
    # auto mode: kprobe where the kernel has kprobes (the kprobe PMU, read
    # here independently), else fentry or tracepoint
    if kprobes:
        assert doc["mode"] == "kprobe"
        assert hooks["tcp_v4_send_reset"]["status"].startswith("used")
        assert hooks["tcp:tcp_send_reset"]["status"].startswith(
            "present, not used")
    else:
        assert doc["mode"] in ("fentry", "tracepoint")
        used = "tcp_v4_send_reset" if doc["mode"] == "fentry" \
            else "tcp:tcp_send_reset"
        assert hooks[used]["status"].startswith("used")
    # the packet hook is opt-in in every mode, and doctor says so
    assert hooks["net:net_dev_queue"]["status"].startswith(
        "used with --packets")


def test_scenarios_results_feed_the_matrix(tmp_path):
    """`scenarios run -o` keeps each scenario's result with this kernel's
    release and mode; `matrix` turns the files into the Markdown table."""
    results = tmp_path / "scenarios.jsonl"
    run = subprocess.run([RSTTRACE, "scenarios", "run", "-o", str(results),
                          "no-listener", "accept-overflow-abort"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["scenario"] for r in lines] == ["no-listener",
                                              "accept-overflow-abort"]
    assert {r["kernel"] for r in lines} == {os.uname().release}
    assert all(r["mode"] in ("kprobe", "fentry", "tracepoint") for r in lines)
    overflow = lines[1]
    assert overflow["counters"]["b"]["TcpExt:EmbryonicRsts"] == 1
    md = tmp_path / "matrix.md"
    run = subprocess.run([RSTTRACE, "matrix", "-o", str(md), str(results)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    text = md.read_text()
    assert os.uname().release in text
    assert "**accept-queue-overflow** `tcp_check_req > tcp_v4_send_reset`" \
        in text
    assert "b: EmbryonicRsts +1" in text


def test_scenarios_output_unwritable_fails_first(tmp_path):
    run = subprocess.run([RSTTRACE, "scenarios", "run", "-o",
                          str(tmp_path / "no" / "such" / "f.jsonl"),
                          "no-listener"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0
    assert run.stderr.startswith("rsttrace: error: cannot write")
    assert "tracing in" not in run.stderr
