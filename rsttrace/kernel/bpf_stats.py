"""The kernel's own statistics of a BPF program: how often it ran and for
how long (run_cnt, run_time_ns), the figures `bpftool prog show` prints.

The kernel counts them only while statistics are on, for every BPF program
on the host, at a cost on each run (two clock reads): either the sysctl
kernel.bpf_stats_enabled is 1, or some process holds a BPF_ENABLE_STATS
file descriptor (5.8+), which turns them off again when it is closed,
also when its holder dies. rsttrace never sets the sysctl; `exporter
--bpf-stats` holds such a descriptor while it runs.

The figures are read from /proc/self/fdinfo of the program's descriptor
(5.1+: run_time_ns and run_cnt lines; absent before).
"""

import ctypes
import os
import platform

from rsttrace.errors import RsttraceError

SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"
BPF_ENABLE_STATS = 32           # enum bpf_cmd, include/uapi/linux/bpf.h
BPF_STATS_RUN_TIME = 0          # enum bpf_stats_type
SYS_BPF = {"x86_64": 321, "aarch64": 280}


def sysctl_on(path=SYSCTL):
    """Whether kernel.bpf_stats_enabled is 1 (False where it is absent)."""
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def parse_fdinfo(text):
    """(run_time_ns, run_cnt) from a BPF program's fdinfo text; None when
    the kernel does not report them."""
    fields = dict(line.split(":", 1) for line in text.splitlines()
                  if ":" in line)
    try:
        return int(fields["run_time_ns"]), int(fields["run_cnt"])
    except (KeyError, ValueError):
        return None


def program_stats(fd):
    """(run_time_ns, run_cnt) of the BPF program behind `fd`, or None."""
    with open("/proc/self/fdinfo/%d" % fd) as f:
        return parse_fdinfo(f.read())


def enable():
    """Turn statistics on while the returned descriptor is open (close it,
    or exit, to turn them off). RsttraceError where the kernel or the
    architecture cannot."""
    number = SYS_BPF.get(platform.machine())
    if number is None:
        raise RsttraceError("--bpf-stats is not supported on %s"
                            % platform.machine(),
                            "set kernel.bpf_stats_enabled=1 instead")
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(
        BPF_STATS_RUN_TIME.to_bytes(4, "little"), 8)
    fd = libc.syscall(number, BPF_ENABLE_STATS, attr, 4)
    if fd < 0:
        err = ctypes.get_errno()
        raise RsttraceError("the kernel refused to turn on BPF statistics "
                            "(%s)" % os.strerror(err),
                            "it needs Linux 5.8 and CAP_SYS_ADMIN; or set "
                            "kernel.bpf_stats_enabled=1")
    return fd
