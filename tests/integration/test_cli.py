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
        if "tracing in" not in line and "counting in the kernel" not in line:
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
                                                "challenge_ack", "abort")]


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


@pytest.mark.parametrize("mode", ["--summary", "--summary-only"])
def test_own_abort_is_no_received_rst_in_either_summary(pair, mode):
    """Data after shutdown: a's kernel aborts its own socket (tcp_reset,
    the receive hook fires) and sends an RST, which b receives. One RST
    crossed the wire: the summary, streamed or counted in the kernel,
    says one sent, one received, and a's abort apart (issue 19)."""
    run = Running("--json", mode, *ns_args(pair))
    assert traffic.data_after_shutdown(pair) == "Connection reset by peer"
    rc, out, err = run.stop()
    assert rc == 0, err
    recs = jsonl(out)
    summary = recs[-1]
    assert summary["kind"] == "summary" and summary["lost"] == 0
    assert summary["by_kind"] == {"sent": 1, "received": 1, "abort": 1}
    assert summary["by_cause"] == {"data-after-close": 2,
                                   "reset-received": 1}
    streamed = [r for r in recs if r["kind"] != "summary"]
    if mode == "--summary":
        assert [(r["kind"], r["state"]) for r in streamed
                if r["kind"] != "sent"] == [("abort", "FIN_WAIT2"),
                                            ("received", "CLOSE_WAIT")]
    else:
        assert streamed == []


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


def test_output_file_holds_the_events_and_nothing_beside_it(pair, tmp_path):
    path = tmp_path / "rst.jsonl"
    run = Running("--json", "-o", str(path), *ns_args(pair))
    traffic.closed_port(pair, 4)
    rc, out, err = run.stop()
    assert rc == 0 and out == ""
    assert len(events(jsonl(path.read_text()))) == 2
    assert os.listdir(tmp_path) == ["rst.jsonl"]


def test_streamed_lines_name_who_is_behind_each_rst(pair, tmp_path):
    # `trace --json -o FILE` writes lines from the events' values, no
    # record made (JsonWriter.event_of): the who-fields must be there too
    path = tmp_path / "rst.jsonl"
    run = Running("--json", "-o", str(path), *ns_args(pair))
    p = traffic.closed_port(pair, 4)
    rc, out, err = run.stop()
    assert rc == 0, err
    evs = {r["kind"]: r for r in events(jsonl(path.read_text()))}
    sent, got = evs["sent"], evs["received"]
    assert (sent["sport"], sent["dport"]) == (p.sport, p.dport)
    assert (sent["owner_pid"], sent["owner_comm"], sent["owner_source"]) \
        == (None, None, "no-socket")
    assert sent["netns_name"] == pair.names["b"]
    # a's connect() was this process's
    assert (got["owner_pid"], got["owner_source"]) == (os.getpid(), "socket")
    assert got["owner_comm"] == open("/proc/self/comm").read().strip()
    assert got["netns_name"] == pair.names["a"]


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
    tracer, lines = lines[0], lines[1:]     # the run's own record first
    assert tracer["run"]["error"] is None and tracer["run"]["bcc"]
    assert tracer["kernel"] == os.uname().release
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


def test_a_mode_this_kernel_lacks_is_a_result_saying_why(tmp_path):
    """`scenarios run -o` in a mode this kernel cannot run writes the run's
    record with the reason (the kernel matrix shows it as a column saying
    why, not by leaving the kernel out) and fails with that one line. A
    kernel with every mode runs it instead."""
    from rsttrace.kernel import features
    lacks = [m for m, ok in (("kprobe", features.kprobes_supported()),
                             ("fentry", features.fentry_supported())) if not ok]
    mode = (lacks or ["kprobe"])[0]
    results = tmp_path / "scenarios.jsonl"
    run = subprocess.run([RSTTRACE, "scenarios", "run", "--mode", mode, "-o",
                          str(results), "no-listener"], capture_output=True,
                         text=True, timeout=300)
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert (lines[0]["kernel"], lines[0]["mode"]) == (os.uname().release,
                                                      mode)
    if lacks:
        assert run.returncode == 1
        assert run.stderr.startswith("rsttrace: error: this kernel ")
        assert len(run.stderr.strip().splitlines()) == 1
        assert len(lines) == 1
        assert lines[0]["run"]["error"] == run.stderr.strip()[
            len("rsttrace: error: "):]
        md = tmp_path / "matrix.md"
        subprocess.run([RSTTRACE, "matrix", "-o", str(md), str(results)],
                       check=True, timeout=60)
        assert "✗ cannot run: this kernel " in md.read_text()
    else:
        assert run.returncode == 0, run.stderr
        assert lines[0]["run"]["error"] is None and len(lines) == 2


def test_scenarios_output_unwritable_fails_first(tmp_path):
    run = subprocess.run([RSTTRACE, "scenarios", "run", "-o",
                          str(tmp_path / "no" / "such" / "f.jsonl"),
                          "no-listener"], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0
    assert run.stderr.startswith("rsttrace: error: cannot write")
    assert "tracing in" not in run.stderr


def test_a_signal_right_after_the_banner_stops_cleanly(tmp_path):
    """A script waits for "tracing in", then signals: the run stops as
    Ctrl-C should (exit 0, the file whole), however soon the signal comes
    (it used to end the run with "Aborted!" and exit 1 when it beat the
    poll loop, which was most of the time)."""
    for sig in (signal.SIGINT, signal.SIGTERM) * 3:
        path = tmp_path / "out.jsonl"
        proc = subprocess.Popen([RSTTRACE, "trace", "--json", "--summary",
                                 "-o", str(path), "--port", "1"],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        while "tracing in" not in proc.stderr.readline():
            assert proc.poll() is None
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, (sig, err)
        assert "Aborted" not in err and "Traceback" not in err
        (summary,) = jsonl(path.read_text())
        assert summary["kind"] == "summary" and summary["events"] == 0
