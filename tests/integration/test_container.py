"""The exporter's container image (packaging/container/Containerfile), built
with podman from Debian packages on the local base image scripts/test-image
makes (no registry here), run as a node agent (--privileged --pid=host
--net=host, the host's tracefs and debugfs): it sees the RSTs provoked on
the host between two namespaces and serves them, counted by cause. Without
the host's /lib/modules: the image's own headers serve bcc."""

import os
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from prometheus_server import free_port, get, wait_for

from rsttrace.lab import craft, traffic

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "scripts",
                                                    "containers.conf"))
IMAGE = "localhost/rsttrace-exporter-test:latest"
SYNS = 200


def podman(*args, timeout=900, stderr_too=False):
    res = subprocess.run(["podman", *args], env=ENV, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, "podman %s: %s" % (" ".join(args),
                                                   res.stderr[-3000:])
    return res.stdout + res.stderr if stderr_too else res.stdout


@pytest.fixture(scope="module")
def image():
    res = subprocess.run([os.path.join(ROOT, "scripts", "test-image")],
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr
    base = res.stdout.strip().splitlines()[-1]
    old = subprocess.run(["podman", "image", "inspect", "--format",
                          "{{.Id}}", IMAGE], env=ENV, capture_output=True,
                         text=True).stdout.strip()
    podman("build", "--runtime", "runc", "--network", "host", "-q",
           "--build-arg", "BASE=" + base, "-f",
           os.path.join(ROOT, "packaging", "container", "Containerfile"),
           "-t", IMAGE, ROOT, timeout=1800)
    if old and old not in podman("image", "inspect", "--format", "{{.Id}}",
                                 IMAGE):
        # the previous build, untagged now: its own layer goes (the
        # Debian packages' layer is shared and stays cached)
        subprocess.run(["podman", "rmi", old], env=ENV, capture_output=True)
    return IMAGE


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


def test_the_containerised_exporter_sees_host_resets(image, pair):
    port = free_port()
    name = "rsttrace-fleet-test-%d" % os.getpid()
    podman("run", "-d", "--rm", "--name", name, "--runtime", "runc",
           "--privileged", "--pid=host", "--net=host",
           "-v", "/sys/kernel/tracing:/sys/kernel/tracing",
           "-v", "/sys/kernel/debug:/sys/kernel/debug",
           image, "exporter", "--listen", "127.0.0.1:%d" % port,
           "--interval", "1", "--netns", str(pair.inode("b")))
    try:
        # podman logs: the container's stderr on its own stderr
        wait_for("the exporter in the container", lambda: "exporting to" in
                 podman("logs", name, stderr_too=True), 300)
        craft.syn_burst(pair, "a", "b", 8080, SYNS)
        traffic.linger_zero(pair)
        traffic.settle(0.2)

        def counts():
            fams = {f.name: f for f in text_string_to_metric_families(
                get("http://127.0.0.1:%d/metrics" % port))}
            out = {}
            for s in fams["rsttrace_resets"].samples:
                out[s.labels["cause"]] = out.get(s.labels["cause"], 0) + \
                    s.value
            info = fams["rsttrace_build_info"].samples[0].labels
            return out if out.get("no-listener") == SYNS and len(out) > 1 \
                else None, info
        got = wait_for("the counts", lambda: counts()[0], 30)
        assert got == {"no-listener": SYNS, "reset-received": 1}
        info = counts()[1]
        assert info["kernel"] == os.uname().release
        assert info["mode"] == "tracepoint"
        podman("stop", "-t", "30", name)
    finally:
        subprocess.run(["podman", "rm", "-f", name], env=ENV,
                       capture_output=True)
    assert name not in podman("ps", "-a", "--format", "{{.Names}}")
