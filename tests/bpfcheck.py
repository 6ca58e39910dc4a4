"""Whether the BPF tests can run here, and the skip-or-fail rule."""

import os

import pytest


def bpf_unavailable():
    """Why BPF tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (BPF programs, network namespaces)"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "bcc's Python module (python3-bpfcc) is not importable"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF"
    return None


def require_bpf():
    """Skip (or, under CI, fail) when BPF tests cannot run."""
    why = bpf_unavailable()
    if why:
        if os.environ.get("CI"):
            pytest.fail("CI must run the BPF tests, but: " + why)
        pytest.skip(why)


def require_vm_host():
    """Skip (or, under CI, fail) when VM tests cannot run: they need root
    (images, loop devices, qemu); the scripts install the rest."""
    why = None if os.geteuid() == 0 else "needs root (builds and boots VMs)"
    if why:
        if os.environ.get("CI"):
            pytest.fail("CI must run the VM tests, but: " + why)
        pytest.skip(why)
