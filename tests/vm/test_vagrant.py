"""The Vagrant path for real (scripts/vagrant-test): a box built locally
from the bookworm image, libvirt's plain qemu driver, `vagrant up` with
scripts/vm-provision, the linger scenarios over `vagrant ssh`, `vagrant
destroy`. Nothing may stay behind in libvirt."""

import os
import re
import subprocess

import pytest

pytestmark = pytest.mark.vm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_vagrant_up_linger_tests_destroy():
    run = subprocess.run([os.path.join(ROOT, "scripts", "vagrant-test")],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=3000)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    # the guest ran the stock bookworm kernel, and the linger scenarios
    assert re.search(r"^6\.1\.\d+-\d+-amd64$", run.stdout, re.M), out[-3000:]
    m = re.search(r"(\d+) passed, (\d+) deselected", out)
    assert m and int(m.group(1)) >= 5, out[-3000:]
    assert not re.search(r"\d+ (failed|skipped|error)", out), out[-3000:]
    assert "vagrant destroy took" in out
    left = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all",
                           "--name"], capture_output=True, text=True)
    assert not [d for d in left.stdout.split() if d.startswith("vagrant_")]
