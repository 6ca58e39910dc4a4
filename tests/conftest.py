"""Tests marked `root` load real BPF programs and provoke real RSTs in network
namespaces. Off root they are skipped with the reason; under CI (CI=true) a
missing precondition is a failure, never a skip (see bpfcheck.py)."""

import pytest

from bpfcheck import require_bpf


@pytest.fixture(autouse=True)
def _bpf_precondition(request):
    if request.node.get_closest_marker("root"):
        require_bpf()
