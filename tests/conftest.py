"""Tests marked `root` load real BPF programs and provoke real RSTs in network
namespaces. Off root they are skipped with the reason; under CI (CI=true) a
missing precondition is a failure, never a skip (see bpfcheck.py). Tests
marked `vm` boot stock Debian kernels (tests/vm) and need root likewise."""

import os
import subprocess

import pytest

from bpfcheck import require_bpf, require_vm_host


@pytest.fixture(autouse=True)
def _bpf_precondition(request):
    if request.node.get_closest_marker("root"):
        require_bpf()
    if request.node.get_closest_marker("vm"):
        require_vm_host()


@pytest.fixture(scope="session")
def deb_package(tmp_path_factory):
    """The Debian package, built once per session by scripts/build-deb (as
    root) for tests/packaging and the VM guests: (path of the .deb, what
    lintian said)."""
    require_bpf()          # root, before a session fixture builds anything
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path_factory.mktemp("deb")
    res = subprocess.run([os.path.join(root, "scripts", "build-deb"),
                          str(out)], cwd=root, capture_output=True,
                         text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-5000:]
    deb = res.stdout.strip().splitlines()[-1]
    assert os.path.isfile(deb), res.stdout
    return deb, (out / "lintian.txt").read_text()
