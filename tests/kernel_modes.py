"""Which attach modes the running kernel offers, and since which version
it behaves how: decided here from facts the tests check for themselves,
never from rsttrace's own feature checks (rsttrace.kernel.features), which
are among the things under test.

  kprobe      the kernel config has CONFIG_KPROBE_EVENTS=y (kprobe events
              and the kprobe PMU bcc attaches through)
  fentry      bpftool (not rsttrace) can load a BPF `tracing` program
              (`bpftool feature probe kernel`), and the kernel has BTF
  tracepoint  bpftool can load a raw tracepoint program, and tracefs has
              tcp:tcp_send_reset

RSTTRACE_TEST_MODES (comma-separated) names modes the kernel must offer:
scripts/vm-suite sets it on the stock Debian guests, where all three exist,
so that a mode missing there fails instead of shrinking the test matrix.
"""

import functools
import os
import re
import subprocess

# reading the config file is no decision: the decisions below are the
# tests' own
from rsttrace.kernel.features import kernel_config

MODES = ("kprobe", "fentry", "tracepoint")
REQUIRED_ENV = "RSTTRACE_TEST_MODES"


@functools.lru_cache(maxsize=None)
def bpftool_probe():
    """`bpftool feature probe kernel` output ('' when it cannot run)."""
    try:
        return subprocess.run(["bpftool", "feature", "probe", "kernel"],
                              capture_output=True, text=True,
                              timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def prog_type_available(name):
    return ("eBPF program_type %s is available" % name) in bpftool_probe()


@functools.lru_cache(maxsize=None)
def offered():
    """The modes this kernel offers, by the facts above (root only: off
    root nothing can be probed, and the BPF tests skip anyway)."""
    if os.geteuid() != 0:
        return ()
    config = kernel_config()
    modes = []
    if config.get("CONFIG_KPROBE_EVENTS") == "y" or (
            not config and os.path.exists(
                "/sys/bus/event_source/devices/kprobe/type")):
        modes.append("kprobe")
    if prog_type_available("tracing") and os.path.exists(
            "/sys/kernel/btf/vmlinux"):
        modes.append("fentry")
    if prog_type_available("raw_tracepoint") and any(
            os.path.isdir(os.path.join(t, "events/tcp/tcp_send_reset"))
            for t in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")):
        modes.append("tracepoint")
    return tuple(modes)


def required():
    return tuple(m for m in os.environ.get(REQUIRED_ENV, "").split(",")
                 if m)


def release_at_least(major, minor):
    """The running kernel's release is major.minor or later (its own
    parse of uname -r, not rsttrace.kernel.history's)."""
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) >= (major, minor)


def sees_socketless(mode):
    """Whether `mode` reports RSTs sent without a full socket (closed port,
    unknown connection, TIME_WAIT): function hooks always do; the
    tcp:tcp_send_reset tracepoint fires for them from 6.10 on, where it
    gained its reason argument (on 5.10 and 6.1 it does not, measured)."""
    return mode != "tracepoint" or release_at_least(6, 10)


def reason_since_6_10(name):
    """The reason an RST of this kernel must carry: `name` from 6.10 on
    (enum sk_rst_reason), none before."""
    return name if release_at_least(6, 10) else None
