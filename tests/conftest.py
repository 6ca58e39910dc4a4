"""Tests marked `root` load real BPF programs and provoke real RSTs in network
namespaces. Off root they are skipped with the reason; under CI (CI=true) a
missing precondition is a failure, never a skip (see bpfcheck.py). Tests
marked `vm` boot stock Debian kernels (tests/vm) and need root likewise."""

import pytest

from bpfcheck import require_bpf, require_vm_host


@pytest.fixture(autouse=True)
def _bpf_precondition(request):
    if request.node.get_closest_marker("root"):
        require_bpf()
    if request.node.get_closest_marker("vm"):
        require_vm_host()
