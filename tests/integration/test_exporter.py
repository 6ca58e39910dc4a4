"""`rsttrace exporter` for real: RSTs provoked between two namespaces are
scraped by a real Prometheus and found by its query API, counted by cause;
the node_exporter textfile is written whole and readable, and another
user's symlink planted in its place is refused."""

import os
import signal
import subprocess
import sys
import tempfile

import pytest
from prometheus_client.parser import text_string_to_metric_families

from prometheus_server import Prometheus, free_port, get, wait_for

from rsttrace.lab import craft, traffic

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
NOBODY = 65534
SYNS = 300
LINGER_ZERO = 4


class Exporter:
    """`rsttrace exporter ARGS` in the background, ready once it says
    where it exports to."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([RSTTRACE, "exporter", *args],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.err = []
        for line in self.proc.stderr:
            self.err.append(line)
            if "exporting to" in line:
                return
        self.proc.wait()
        raise AssertionError("exporter ended (%s): %s"
                             % (self.proc.returncode, "".join(self.err)))

    def stop(self):
        """SIGTERM; its exit status and the rest of stderr."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, "".join(self.err) + err


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


SERVICE_PORT = 8080        # below the ephemeral range: a label value


def provoke(pair):
    """SYNS no-listener RSTs from b (SYNs to its closed SERVICE_PORT),
    LINGER_ZERO linger-zero-close RSTs from a (each also a reset-received
    in b)."""
    craft.syn_burst(pair, "a", "b", SERVICE_PORT, SYNS)
    for _ in range(LINGER_ZERO):
        traffic.linger_zero(pair)
    traffic.settle(0.2)


def by_cause(prom, expr):
    return {dict(k).get("cause"): v for k, v in prom.query(expr).items()}


def test_prometheus_scrapes_the_provoked_resets(pair):
    port = free_port()
    exporter = Exporter("--listen", "127.0.0.1:%d" % port, "--interval", "1",
                        "--netns", str(pair.inode("a")),
                        "--netns", str(pair.inode("b")), "--label", "netns")
    prom = Prometheus(["127.0.0.1:%d" % port])
    try:
        wait_for("first scrape", lambda: prom.query(
            'up{job="rsttrace"} == 1'), 60)
        provoke(pair)
        want = {"no-listener": SYNS, "linger-zero-close": LINGER_ZERO,
                "reset-received": LINGER_ZERO}
        got = wait_for("the provoked counts in Prometheus", lambda: (
            lambda r: r if r == want else None)(by_cause(
                prom, "sum by (cause) (rsttrace_resets_total)")), 60)
        assert got == want
        b = by_cause(prom, 'sum by (cause) (rsttrace_resets_total{netns="%d"}'
                     ')' % pair.inode("b"))
        assert b == {"no-listener": SYNS, "reset-received": LINGER_ZERO}
        sent = prom.query('sum(rsttrace_resets_total{direction="sent"})')
        assert list(sent.values()) == [SYNS + LINGER_ZERO]
        assert prom.query("rsttrace_events_lost_total") and not prom.query(
            "rsttrace_events_lost_total > 0")
        info = prom.query("rsttrace_build_info")
        assert [dict(k)["mode"] for k in info] == ["tracepoint"]
        assert prom.query("rsttrace_kernel_tcp_out_rsts_total")
        assert prom.query("rsttrace_harvest_age_seconds < 5")
    finally:
        prom.close()
        rc, err = exporter.stop()
    assert rc == 0, err
    assert "Traceback" not in err


def test_textfile_is_written_whole_and_readable(pair):
    directory = tempfile.mkdtemp(prefix="rsttrace-fleet-textfile-")
    os.chmod(directory, 0o755)          # as node_exporter's textfile dir
    try:
        exporter = Exporter("--listen", "none", "--interval", "1",
                            "--textfile-dir", directory,
                            "--netns", str(pair.inode("b")),
                            "--label", "local_port")
        path = os.path.join(directory, "rsttrace.prom")
        assert oct(os.stat(path).st_mode & 0o777) == "0o644"
        provoke(pair)
        rc, err = exporter.stop()
        assert rc == 0, err
        assert os.listdir(directory) == ["rsttrace.prom"]   # no temporary
        with open(path) as f:
            families = {f.name: f for f in
                        text_string_to_metric_families(f.read())}
        counts = {}
        for s in families["rsttrace_resets"].samples:
            key = (s.labels["cause"], s.labels["local_port"])
            counts[key] = counts.get(key, 0) + s.value
        # b's RSTs: SYNs to a closed service port, and resets received by
        # sockets accepted from a listener on a port the kernel chose
        assert counts[("no-listener", str(SERVICE_PORT))] == SYNS
        assert len([k for k in counts if k[0] == "no-listener"]) == 1
        assert sum(v for k, v in counts.items()
                   if k[0] == "reset-received") == LINGER_ZERO
        assert "process_cpu_seconds" not in families      # node_exporter's
        # node_exporter, not root, reads it
        subprocess.run(["setpriv", "--reuid=%d" % NOBODY,
                        "--regid=%d" % NOBODY, "--clear-groups", "cat", path],
                       check=True, stdout=subprocess.DEVNULL)
    finally:
        subprocess.run(["rm", "-rf", directory])


def test_nobodys_symlink_in_place_of_the_textfile_is_refused():
    shared = tempfile.mkdtemp(prefix="rsttrace-fleet-shared-")
    private = tempfile.mkdtemp(prefix="rsttrace-fleet-private-")
    try:
        os.chmod(shared, 0o1777)
        victim = os.path.join(private, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        subprocess.run(["setpriv", "--reuid=%d" % NOBODY,
                        "--regid=%d" % NOBODY, "--clear-groups", "ln", "-s",
                        victim, os.path.join(shared, "rsttrace.prom")],
                       check=True)
        res = subprocess.run([RSTTRACE, "exporter", "--listen", "none",
                              "--textfile-dir", shared, "--duration", "1"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 1
        assert res.stderr.count("\n") == 1, res.stderr
        assert "rsttrace.prom is a symlink owned by uid 65534" in res.stderr
        assert "refusing" in res.stderr
        with open(victim) as f:
            assert f.read() == "precious\n"
        assert os.listdir(shared) == ["rsttrace.prom"]
    finally:
        subprocess.run(["rm", "-rf", shared, private])


def test_the_http_server_serves_only_metrics():
    port = free_port()
    exporter = Exporter("--listen", "127.0.0.1:%d" % port, "--netns", "1")
    try:
        text = get("http://127.0.0.1:%d/metrics" % port)
        assert "# TYPE rsttrace_resets_total counter" in text
        assert "process_resident_memory_bytes" in text
    finally:
        rc, err = exporter.stop()
    assert rc == 0, err


def test_a_taken_port_is_one_line():
    port = free_port()
    exporter = Exporter("--listen", "127.0.0.1:%d" % port, "--netns", "1")
    try:
        res = subprocess.run([RSTTRACE, "exporter", "--listen",
                              "127.0.0.1:%d" % port], capture_output=True,
                             text=True, timeout=120)
    finally:
        exporter.stop()
    assert res.returncode == 1
    assert res.stderr.startswith("rsttrace: error: cannot listen on "
                                 "127.0.0.1:%d (Address already in use)"
                                 % port), res.stderr
    assert res.stderr.count("\n") == 1


def test_a_full_disk_keeps_the_last_textfile_and_the_exporter():
    """The textfile's disk fills up while the exporter runs: the old file
    stays whole, no temporary file is left, the failure is said once and
    counted, metrics are still served; once there is room it is written
    again."""
    directory = tempfile.mkdtemp(prefix="rsttrace-fleet-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                    directory], check=True)
    port = free_port()
    exporter = None
    try:
        exporter = Exporter("--listen", "127.0.0.1:%d" % port,
                            "--interval", "1", "--netns", "1",
                            "--textfile-dir", directory)
        path = os.path.join(directory, "rsttrace.prom")
        filler = os.path.join(directory, "filler")
        subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=4k"],
                       capture_output=True)         # until ENOSPC
        url = "http://127.0.0.1:%d/metrics" % port
        wait_for("the failure counted", lambda: 'rsttrace_errors_total{'
                 'source="textfile"}' in get(url), 30)
        with open(path) as f:
            old = f.read()
        assert old.endswith("\n") and "rsttrace_resets_total" in old
        assert sorted(os.listdir(directory)) == ["filler", "rsttrace.prom"]
        os.unlink(filler)
        wait_for("written again", lambda: (lambda t: t != old and t)(
            open(path).read()), 30)
        rc, err = exporter.stop()
        exporter = None
        assert rc == 0, err
        said = [line for line in err.splitlines() if "textfile:" in line]
        assert len(said) == 2, err
        assert "No space left on device" in said[0]
        assert said[1] == "rsttrace: textfile: working again"
    finally:
        if exporter is not None:
            exporter.stop()
        subprocess.run(["umount", directory])
        os.rmdir(directory)
