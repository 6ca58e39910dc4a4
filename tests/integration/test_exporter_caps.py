"""The capabilities packaging/systemd/rsttrace-exporter.service keeps are
what rsttrace needs, measured on this host (tracepoint mode,
perf_event_paranoid 2): with CAP_BPF, CAP_PERFMON and CAP_SYSLOG only (as
uid 0, the way systemd runs it) a traced RST comes with its kernel stack
named; without any one of them it does not (no program, or unnamed
frames). The unit's fourth, CAP_SYS_ADMIN, is for kprobes on kernels with
perf_event_paranoid 3 (Debian's): tests/vm/test_exporter_systemd.py runs
the unit there."""

import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "packaging", "systemd", "rsttrace-exporter.service")
RSTTRACE = os.path.join(os.path.dirname(sys.executable), "rsttrace")


def unit_caps():
    with open(UNIT) as f:
        caps = re.search(r"^CapabilityBoundingSet=(.*)$", f.read(),
                         re.M).group(1).split()
    return [c[len("CAP_"):].lower() for c in caps]


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trace_one_rst(caps):
    """`rsttrace trace --json` with only `caps`, and an RST to trace; its
    (exit status, events, stderr)."""
    port = closed_port()
    proc = subprocess.Popen(
        ["setpriv", "--bounding-set", ",".join(["-all"] + ["+" + c for c in
                                                           caps]),
         "--inh-caps=-all", "--", RSTTRACE, "trace", "--json", "--count",
         "1", "--duration", "60", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    ready = threading.Event()

    def read_err():
        for line in proc.stderr:
            err.append(line)
            if "Ctrl-C" in line:
                ready.set()
        ready.set()
    threading.Thread(target=read_err, daemon=True).start()
    ready.wait(120)
    while proc.poll() is None:
        with socket.socket() as c:
            try:
                c.connect(("127.0.0.1", port))
            except OSError:
                pass
        time.sleep(0.5)
    out = proc.stdout.read()
    import json
    events = [json.loads(line) for line in out.splitlines()
              if line.startswith('{"time"')]
    return proc.returncode, events, "".join(err)


THREE = ["bpf", "perfmon", "syslog"]


def test_the_units_capabilities_are_listed():
    assert unit_caps() == THREE + ["sys_admin"]


def test_three_capabilities_suffice_here():
    rc, events, err = trace_one_rst(THREE)
    assert rc == 0, err
    assert len(events) == 1 and events[0]["cause"] == "no-listener"
    assert "tcp_v4_send_reset" in events[0]["stack"], events[0]["stack"]
    assert "CAP_" not in err


@pytest.mark.parametrize("missing", ["bpf", "perfmon"])
def test_without_bpf_or_perfmon_nothing_loads(missing):
    rc, events, err = trace_one_rst([c for c in THREE if c != missing])
    assert rc == 1 and not events
    assert err.startswith("rsttrace: error: rsttrace runs without CAP_BPF "
                          "and CAP_PERFMON"), err
    assert err.count("\n") == 1


def test_without_syslog_the_stack_is_unnamed():
    rc, events, err = trace_one_rst([c for c in THREE if c != "syslog"])
    assert rc == 0, err
    assert len(events) == 1
    assert "tcp_v4_send_reset" not in events[0]["stack"]
    assert "rsttrace: no CAP_SYSLOG: kernel stacks cannot be named" in err
