"""The exporter's systemd unit (packaging/systemd/rsttrace-exporter.service)
run for real: this host has no systemd as PID 1, so a bookworm guest (its
stock kernel: kprobe mode) boots with systemd as init (scripts/vm
--systemd) and runs scripts/vm-exporter-check there: start the unit as
shipped, scrape it while RSTs are provoked, check its capabilities and
journal, SIGKILL it and see it restarted, stop it, and find no BPF program
of it left. One boot and two bcc compiles, about 3-4 minutes under TCG."""

import os
import subprocess

import pytest

pytestmark = pytest.mark.vm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CHECKS = ("started and serving",
          "effective capabilities [21, 34, 38, 39]",
          "no-listener counted 5 times", "mode ['kprobe']",
          "the journal has its start line",
          "restarted by systemd after SIGKILL",
          "stopped; no BPF program left")


def test_the_unit_runs_under_systemd_and_leaves_nothing():
    res = subprocess.run(
        [os.path.join(ROOT, "scripts", "vm"), "--systemd", "--timeout",
         "1500", "bookworm", "--", "scripts/vm-exporter-check"],
        cwd=ROOT, capture_output=True, text=True, timeout=3600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    lines = [line for line in out.splitlines() if line.startswith("ok: ")]
    for check in CHECKS:
        assert any(check in line for line in lines), (check, out[-4000:])
    assert len(lines) == len(CHECKS), lines
