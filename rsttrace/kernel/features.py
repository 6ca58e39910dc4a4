"""What the running kernel offers: BTF, attach types, functions, HZ.

Each check asks the kernel itself (kallsyms, tracefs, libbpf's feature
probes, the kernel config) rather than guessing from a version number.
"""

import bisect
import ctypes
import ctypes.util
import functools
import gzip
import os
import re
import time

from rsttrace.kernel import btf as btfmod
from rsttrace.kernel import history

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

# enum bpf_prog_type / bpf_map_type values (include/uapi/linux/bpf.h).
BPF_PROG_TYPE_KPROBE = 2
BPF_PROG_TYPE_TRACEPOINT = 5
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
BPF_PROG_TYPE_TRACING = 26
BPF_MAP_TYPE_RINGBUF = 27


def release():
    return os.uname().release


def version(rel=None):
    """(major, minor, patch) of this kernel (history.version)."""
    return history.version(rel or release())


@functools.lru_cache(maxsize=None)
def load_btf(path=btfmod.VMLINUX):
    """The kernel's BTF, or None when the kernel has none."""
    if not os.path.exists(path):
        return None
    return btfmod.BTF.load(path)


def tracefs(mount=False):
    """The tracefs mount point; mounts it at /sys/kernel/tracing if asked
    and nothing is mounted. None if there is none."""
    for path in TRACEFS_CANDIDATES:
        if os.path.isdir(os.path.join(path, "events")):
            return path
    if mount and os.path.isdir(TRACEFS_CANDIDATES[0]):
        rc = os.system("mount -t tracefs tracefs %s 2>/dev/null"
                       % TRACEFS_CANDIDATES[0])
        if rc == 0 and os.path.isdir(
                os.path.join(TRACEFS_CANDIDATES[0], "events")):
            return TRACEFS_CANDIDATES[0]
    return None


def tracepoint_exists(category, name):
    tfs = tracefs()
    if tfs:
        return os.path.isdir(os.path.join(tfs, "events", category, name))
    kbtf = load_btf()
    return bool(kbtf and kbtf.has("btf_trace_" + name, btfmod.KIND_TYPEDEF))


def tracepoint_format(category, name):
    tfs = tracefs()
    if not tfs:
        return None
    try:
        with open(os.path.join(tfs, "events", category, name, "format")) as f:
            return f.read()
    except OSError:
        return None


@functools.lru_cache(maxsize=None)
def _kallsyms():
    """({symbol: [addresses]}, {symbol: module}) for the text symbols (t/T)
    in /proc/kallsyms; a module's are followed by `[module]`."""
    syms, owners = {}, {}
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in ("t", "T"):
                    syms.setdefault(parts[2], []).append(parts[0])
                    if len(parts) > 3:
                        owners[parts[2]] = parts[3].strip("[]")
    except OSError:
        pass
    return syms, owners


def kallsyms():
    """{symbol: [addresses]} for text symbols (t/T) in /proc/kallsyms."""
    return _kallsyms()[0]


def symbol_module(symbol):
    """The module a kallsyms symbol is in; None for the kernel's own."""
    return _kallsyms()[1].get(symbol)


def forget_symbols():
    """Read kallsyms again on next use (modules were loaded or unloaded)."""
    _kallsyms.cache_clear()
    _text_addresses.cache_clear()


def function_range(name):
    """(start, end) addresses of kernel function `name` in /proc/kallsyms:
    from its own address to the next symbol's. None when it is not there
    (inlined, absent, or addresses hidden from this user)."""
    starts = kallsyms().get(name)
    if not starts or len(starts) != 1:
        return None
    start = int(starts[0], 16)
    addrs = _text_addresses()
    i = bisect.bisect_right(addrs, start)
    if not start or i >= len(addrs):
        return None
    return start, addrs[i]


@functools.lru_cache(maxsize=None)
def _text_addresses():
    """Every distinct text symbol address, sorted."""
    return sorted({int(a, 16) for addrs in kallsyms().values()
                   for a in addrs})


def function_symbol(name, symbols=None):
    """The symbol that is function `name` among `symbols` (kallsyms by
    default): the name itself, or a compiler clone such as
    `tcp_send_challenge_ack.constprop.0` (5.10) when the plain name is
    gone. Parts split off a function (`.cold`) are not the function. None
    when the function is missing (inlined or absent)."""
    syms = kallsyms() if symbols is None else symbols
    if name in syms:
        return name
    clones = sorted(s for s in syms
                    if s.startswith(name + ".") and ".cold" not in s)
    return clones[0] if clones else None


@functools.lru_cache(maxsize=None)
def _libbpf():
    path = ctypes.util.find_library("bpf") or "libbpf.so.1"
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for fn in ("libbpf_probe_bpf_prog_type", "libbpf_probe_bpf_map_type"):
        if not hasattr(lib, fn):
            return None
        getattr(lib, fn).argtypes = [ctypes.c_int, ctypes.c_void_p]
        getattr(lib, fn).restype = ctypes.c_int
    return lib


def prog_type_supported(prog_type):
    """libbpf's probe: loads a trivial program of that type. None: unknown
    (no libbpf, or not root, so nothing can be loaded)."""
    lib = _libbpf()
    if lib is None or os.geteuid() != 0:
        return None
    return lib.libbpf_probe_bpf_prog_type(prog_type, None) == 1


def ringbuf_supported():
    lib = _libbpf()
    if lib is not None and os.geteuid() == 0:
        return lib.libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, None) == 1
    return history.since(version(), history.RINGBUF)


def kprobes_supported():
    """kprobes exist when the kernel has the kprobe PMU or kprobe_events
    (CONFIG_KPROBES); a kprobe program type alone is not enough."""
    if os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
        return True
    tfs = tracefs()
    return bool(tfs and os.path.exists(os.path.join(tfs, "kprobe_events")))


def fentry_supported():
    """fentry needs BTF, BPF trampolines and the `tracing` program type;
    bcc's own check (a kallsyms symbol) says yes on kernels where loading
    such a program fails, so ask the kernel with a real load."""
    if load_btf() is None:
        return False
    if "bpf_trampoline_link_prog" not in kallsyms():
        return False
    return prog_type_supported(BPF_PROG_TYPE_TRACING)


def raw_tracepoints_supported():
    ok = prog_type_supported(BPF_PROG_TYPE_RAW_TRACEPOINT)
    if ok is None:
        ok = "bpf_get_raw_tracepoint" in kallsyms() or \
            "bpf_find_raw_tracepoint" in kallsyms()
    return ok


def kernel_config():
    """The kernel's config as {CONFIG_X: value}, from /proc/config.gz or
    /boot/config-<release>; {} when neither exists."""
    for path, opener in (("/proc/config.gz", gzip.open),
                         ("/boot/config-" + release(), open)):
        try:
            with opener(path, "rt") as f:
                return dict(line.strip().split("=", 1) for line in f
                            if line.startswith("CONFIG_") and "=" in line)
        except OSError:
            continue
    return {}


@functools.lru_cache(maxsize=None)
def hz():
    """The kernel's HZ (jiffies per second), needed to turn sk_lingertime
    into seconds: CONFIG_HZ, else measured from /proc/timer_list."""
    value = kernel_config().get("CONFIG_HZ")
    if value and value.isdigit():
        return int(value)
    return _measure_hz()


def _timer_list_sample():
    with open("/proc/timer_list") as f:
        text = f.read(4096)
    now = re.search(r"now at (\d+) nsecs", text)
    jif = re.search(r"jiffies: (\d+)", text)
    if not (now and jif):
        raise OSError("no jiffies in /proc/timer_list")
    return int(now.group(1)), int(jif.group(1))


def _measure_hz():
    try:
        t0, j0 = _timer_list_sample()
        time.sleep(0.2)
        t1, j1 = _timer_list_sample()
    except OSError:
        return None
    rate = (j1 - j0) * 1e9 / (t1 - t0)
    return min((100, 250, 300, 1000), key=lambda h: abs(h - rate))


def bcc_version():
    try:
        import bcc  # noqa: F401
    except ImportError:
        return None
    try:
        from bcc.version import __version__
        return __version__
    except ImportError:
        return "unknown"
