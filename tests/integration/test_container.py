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
IMAGE = "localhost/rsttrace-exporter-test:latest"
SYNS = 200


@pytest.fixture(scope="module")
def podman():
    """podman with its storage in rsttrace's own cache (private_podman.py),
    its run state in a directory of this module's, removed after."""
    from private_podman import CACHE, PrivatePodman
    private = PrivatePodman(CACHE)
    yield private
    private.close()


@pytest.fixture(scope="module")
def image(podman):
    res = subprocess.run([os.path.join(ROOT, "scripts", "test-image")],
                         env=podman.env, capture_output=True, text=True,
                         timeout=1200)
    assert res.returncode == 0, res.stderr
    base = res.stdout.strip().splitlines()[-1]
    old = podman.podman("image", "inspect", "--format", "{{.Id}}", IMAGE,
                        check=False)
    podman.podman("build", "--network", "host", "-q",
                  "--build-arg", "BASE=" + base, "-f",
                  os.path.join(ROOT, "packaging", "container",
                               "Containerfile"),
                  "-t", IMAGE, ROOT, timeout=1800)
    if old and old != podman.podman("image", "inspect", "--format",
                                    "{{.Id}}", IMAGE):
        # the previous build, untagged now: its own layer goes (the
        # Debian packages' layer is shared and stays cached)
        podman.podman("rmi", old, check=False)
    return IMAGE


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


def test_the_containerised_exporter_sees_host_resets(podman, image, pair):
    port = free_port()
    name = "rsttrace-fleet-test-%d" % os.getpid()
    podman.podman("run", "-d", "--rm", "--name", name,
                  "--privileged", "--pid=host", "--net=host",
                  "-v", "/sys/kernel/tracing:/sys/kernel/tracing",
                  "-v", "/sys/kernel/debug:/sys/kernel/debug",
                  image, "exporter", "--listen", "127.0.0.1:%d" % port,
                  "--interval", "1", "--netns", str(pair.inode("b")))

    def logs():
        # podman logs: the container's stderr on its own stderr
        res = subprocess.run(podman.base + ["logs", name], env=podman.env,
                             capture_output=True, text=True, timeout=60)
        return res.stdout + res.stderr
    try:
        wait_for("the exporter in the container",
                 lambda: "exporting to" in logs(), 300)
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
        podman.podman("stop", "-t", "30", name, timeout=60)
    finally:
        podman.podman("rm", "-f", name, check=False)
    assert name not in podman.podman("ps", "-a", "--format", "{{.Names}}")


def test_the_host_is_left_as_it_was(podman, image):
    """Last in this module: the images stay in rsttrace's cache, and
    closing the run (the fixture's own close after this does nothing)
    leaves no podman process and the host's podman paths (the system
    storage the operator's `podman images` shows, /run), cgroups and mounts
    as they were before the module began (other podman users' cgroups
    aside)."""
    from private_podman import CACHE
    assert podman.graphroot == CACHE
    assert podman.podman("images", "--format", "{{.Repository}}:{{.Tag}}",
                         image) == image
    podman.close()
    assert "rsttrace-fleet-test-%d" % os.getpid() in podman.ids.values()
    assert podman.processes() == []
    assert not os.path.exists(podman.dir)
    assert not os.path.exists(CACHE + "/libpod")
    assert podman.leftovers() == (set(), set())
