"""The Vagrant path for real (scripts/vagrant-test): a box built locally
from the bookworm image, libvirt's plain qemu driver, `vagrant up` with
scripts/vm-provision, the VM's two groups of scenarios over `vagrant ssh`
(linger, and accept-overflow with its kernel counters), `vagrant destroy`.
Nothing may stay behind in libvirt, nor in /etc/libvirt/qemu.conf."""

import os
import re
import subprocess

import pytest

pytestmark = pytest.mark.vm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
QEMU_CONF = "/etc/libvirt/qemu.conf"

# What the Vagrant VM is for (vagrant/README.md): every scenario of both
# groups must have run in the guest and passed, named one by one.
GROUPS = {
    "linger": ["linger-zero", "linger-zero-unsent", "linger-zero-unacked",
               "linger-timeout-queued", "linger2-negative"],
    "accept-overflow": ["accept-overflow-abort", "accept-overflow-no-abort",
                        "accept-overflow-sequential"],
}


def _conf():
    try:
        with open(QEMU_CONF) as f:
            return f.read()
    except FileNotFoundError:
        return None


def test_vagrant_up_linger_and_accept_overflow_tests_destroy():
    conf_before = _conf()
    run = subprocess.run([os.path.join(ROOT, "scripts", "vagrant-test")],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=3000)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    # the guest ran the stock bookworm kernel
    assert re.search(r"^6\.1\.\d+-\d+-amd64$", run.stdout, re.M), out[-3000:]
    # pytest -v in the guest: "...::test_scenario[NAME] PASSED [ 12%]"
    status = dict(re.findall(r"::test_scenario\[([\w-]+)\] ([A-Z]+)",
                             run.stdout))
    for group, names in GROUPS.items():
        got = {n: status.get(n, "not run") for n in names}
        assert all(s == "PASSED" for s in got.values()), (group, got,
                                                          out[-3000:])
    assert not re.search(r"\d+ (failed|skipped|error)", out), out[-3000:]
    assert "vagrant destroy took" in out
    left = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all",
                           "--name"], capture_output=True, text=True)
    assert not [d for d in left.stdout.split() if d.startswith("vagrant_")]
    # qemu.conf as it was (libvirt's package may have created it), without
    # the line an earlier version of the script left behind
    conf = _conf()
    assert "rsttrace vagrant-test" not in (conf or "")
    if conf_before is not None:
        assert conf == "".join(l for l in conf_before.splitlines(True)
                               if "rsttrace vagrant-test" not in l)
