"""On a kernel with no headers of its own, rsttrace points bcc at the
distribution's generic tree in /usr/src by itself (rsttrace/kernel/
headers.py), changing nothing on the host: what the Debian package relies
on. Here the kernel's /lib/modules/<release> is hidden by an empty tmpfs
in a private mount namespace, so neither its build link nor anything else
there can serve bcc, and `rsttrace trace` must still compile, attach and
see a provoked RST."""

import json
import os
import subprocess
import sys

import pytest

from rsttrace.kernel import headers
from rsttrace.lab import traffic

pytestmark = pytest.mark.root

RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")
HIDE = ('mount -t tmpfs rsttrace-test-hide "/lib/modules/$(uname -r)" && '
        'exec "$@"')


def hidden(*argv):
    """argv in a private mount namespace whose /lib/modules/<release> is
    empty."""
    os.makedirs("/lib/modules/%s" % os.uname().release, exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private",
            "sh", "-c", HIDE, "sh", *argv]


@pytest.fixture()
def pair():
    from rsttrace.lab.netns import NamespacePair
    with NamespacePair() as p:
        yield p


def test_doctor_names_the_generic_tree():
    tree = headers.generic()
    assert tree is not None, "no generic headers in /usr/src (scripts/setup)"
    res = subprocess.run(hidden(RSTTRACE, "doctor", "--json"),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["checks"]["headers"] == tree.build
    res = subprocess.run(hidden(RSTTRACE, "doctor"),
                         capture_output=True, text=True, timeout=120)
    line = [x for x in res.stdout.splitlines() if x.startswith("headers ")]
    assert len(line) == 1 and "found in /usr/src" in line[0], res.stdout


def test_trace_compiles_with_the_generic_tree_and_sees_an_rst(pair):
    proc = subprocess.Popen(
        hidden(RSTTRACE, "trace", "--json", "--count", "2",
               "--duration", "120", "--netns", pair.names["a"],
               "--netns", pair.names["b"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        assert "tracing in" in banner, banner + proc.stderr.read()
        p = traffic.closed_port(pair, 4)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert len(recs) == 2, out
    assert {r["kind"] for r in recs} == {"sent", "received"}
    assert all({r["sport"], r["dport"]} == {p.sport, p.dport} for r in recs)
    assert {r["cause"] for r in recs if r["kind"] == "sent"} == \
        {"no-listener"}
