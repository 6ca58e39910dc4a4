"""Compile bpf/rsttrace.bpf.c with bcc, attach it, and read its events.

    tracer = Tracer(mode="auto", filters=Filters())
    tracer.start(on_event)      # on_event(raw bcc event struct) -> 0, or
                                # < 0 to end the poll in progress
    while ...: tracer.poll(100)
    tracer.close()
"""

import ctypes
import mmap
import os
import sys

from rsttrace import abi
from rsttrace.errors import RsttraceError
from rsttrace.kernel import features, headers, offsets
from rsttrace.trace import hooks, module_probes, ringbuf
from rsttrace.trace.module_watch import ModuleWatch
from rsttrace.trace.filters import Filters
from rsttrace.trace.visibility import Visibility

# rsttrace/bpf: in the tree a link to bpf/, in an installed package (wheel,
# .deb) the sources themselves (setup.cfg: package_data)
BPF_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "bpf")
BPF_SOURCE = os.path.join(BPF_DIR, "rsttrace.bpf.c")

STACK_ENTRIES = 16384
RINGBUF_PAGES = 1024         # 4 MiB, shared by all CPUs
PERF_PAGES = 256             # per CPU, where there is no ring buffer
AGG_ENTRIES = 16384          # distinct keys in summary mode
# -D macros that tests and benchmarks may add (Tracer(defines=...)); see
# stack_key() in bpf/rsttrace.bpf.c
EXTRA_DEFINES = {
    "STACK_MEMO_CHECK": "walk every stack all the same and count the "
                        "remembered ones a walk contradicts",
    "NO_STACK_MEMO": "walk every stack (nothing remembered)",
}


def wake_every(pages):
    """Events a CPU writes between two wakeups of the reader: all CPUs
    together then fill at most a quarter of a buffer of `pages` before the
    reader is woken (bpf/rsttrace.bpf.c, BPF_RB_NO_WAKEUP)."""
    records = pages * mmap.PAGESIZE // ringbuf.RECORD_SIZE
    return max(1, records // (4 * os.cpu_count()))
OWNER_ENTRIES = 65536        # sockets whose owner the kernel remembers
# Where socket owners are recorded, and by which program of
# bpf/rsttrace.bpf.c: it runs on every TCP state change of the host
OWNER_TRACEPOINT = ("sock", "inet_sock_set_state")
OWNER_PROGRAM = "on_sock_set_state"


def import_bcc():
    try:
        import bcc
    except ImportError:
        raise RsttraceError(
            "bcc's Python module is missing",
            "install Debian's python3-bpfcc (scripts/setup does) and run "
            "rsttrace with /usr/bin/python3 or a venv made with "
            "--system-site-packages; never `pip install bcc`")
    return bcc


# Capability numbers (include/uapi/linux/capability.h).
CAP_SYS_ADMIN, CAP_SYSLOG, CAP_PERFMON, CAP_BPF = 21, 34, 38, 39


def effective_caps(status="/proc/self/status"):
    """The set of this process's effective capability numbers."""
    with open(status) as f:
        for line in f:
            if line.startswith("CapEff:"):
                mask = int(line.split()[1], 16)
                return {n for n in range(64) if mask >> n & 1}
    return set()


def require_root():
    """Root, and the capabilities BPF tracing needs (a service may run as
    root with fewer: packaging/systemd/rsttrace-exporter.service)."""
    if os.geteuid() != 0:
        raise RsttraceError("rsttrace needs root to load BPF programs",
                            "run it with sudo")
    caps = effective_caps()
    if CAP_SYS_ADMIN not in caps and not {CAP_BPF, CAP_PERFMON} <= caps:
        raise RsttraceError("rsttrace runs without CAP_BPF and CAP_PERFMON "
                            "(or CAP_SYS_ADMIN), which loading and "
                            "attaching its BPF programs needs",
                            "add them to the service's capabilities")


def warn_unnamed_stacks(warn):
    """Say so when kernel stacks will come out unnamed."""
    if os.geteuid() == 0 and CAP_SYSLOG not in effective_caps():
        warn("no CAP_SYSLOG: kernel stacks cannot be named (kernel "
             "addresses in /proc/kallsyms are hidden), and causes decided "
             "on the kernel path become unknown")


class Tracer:
    """The BPF side of rsttrace, for one attach mode and one filter set."""

    def __init__(self, mode="auto", filters=None, warn=None, packets=False,
                 buffer_pages=None, summary_only=False, agg_cflags=(),
                 owners=True, buffer=None, agg_entries=AGG_ENTRIES,
                 defines=()):
        self.requested_mode = mode
        self.summary_only = summary_only
        # summary mode: more agg_key fields (metric_labels.cflags)
        self.agg_cflags = list(agg_cflags)
        self._agg_live = None        # summary mode: the map counted into
        # record socket owners in the kernel (not needed for counting)
        self.owners = owners and not summary_only
        self.buffer_pages = buffer_pages
        # "ring" or "perf" forces that event buffer (tests: the perf
        # buffer path on a kernel that has the ring buffer); None: the ring
        # buffer where the kernel has one
        self.buffer = buffer
        self.agg_entries = agg_entries  # summary mode's map (tests: tiny)
        self.packets = packets
        self.filters = filters or Filters()
        # more -D macros, for tests and benchmarks (EXTRA_DEFINES)
        unknown = set(defines) - set(EXTRA_DEFINES)
        if unknown:
            raise ValueError("no such BPF program option: %s"
                             % ", ".join(sorted(unknown)))
        self.defines = tuple(defines)
        self.warn = warn or (lambda msg: print("rsttrace: " + msg,
                                               file=sys.stderr))
        self.bpf = None
        self.mode = None
        self.placements = []
        self.kbtf = None
        self.headers = None
        self.ringbuf = False
        self.reader = None          # ringbuf.RingReader, where it applies
        self.perf_lost = 0
        self.module_probes = None   # kprobes on module functions
        self.module_watch = ModuleWatch(lambda line: self.warn(line))

    # -- planning (no BPF loaded yet) --------------------------------------

    def plan(self):
        """Decide mode, hooks and flags; raise RsttraceError if impossible."""
        require_root()
        warn_unnamed_stacks(self.warn)
        import_bcc()
        features.tracefs(mount=True)
        self.kbtf = features.load_btf()
        self.headers = headers.required(self.kbtf is not None,
                                        features.release())
        if self.requested_mode in (None, "auto"):
            self.mode = hooks.auto_mode()
        else:
            hooks.check_mode(self.requested_mode)
            self.mode = self.requested_mode
        self.placements = [hooks.place(h, self.mode, self.kbtf)
                           for h in hooks.hooks_for(self.mode, self.packets)]
        if not any(not p.skipped for p in self.placements):
            raise RsttraceError(
                "none of rsttrace's hooks exist in this kernel for mode %s: %s"
                % (self.mode, "; ".join(p.skipped for p in self.placements)),
                "try another --mode")
        self.ringbuf = self._use_ringbuf()
        if self.owners and not features.tracepoint_exists(*OWNER_TRACEPOINT):
            self.warn("no tracepoint %s:%s in this kernel (4.16+): socket "
                      "owners are found only through /proc" % OWNER_TRACEPOINT)
            self.owners = False
        return self

    def _use_ringbuf(self):
        if self.buffer == "perf":
            return False
        if features.ringbuf_supported():
            return True
        if self.buffer == "ring":
            raise RsttraceError("this kernel has no BPF ring buffer (5.8+)",
                                "leave --buffer out")
        return False

    def cflags(self):
        flags = ["-I" + BPF_DIR,
                 "-DMODE_%s" % {"kprobe": "KPROBE", "fentry": "FENTRY",
                                "tracepoint": "RAW_TP"}[self.mode],
                 "-DSTACK_ENTRIES=%d" % STACK_ENTRIES,
                 "-Wno-macro-redefined"]
        if self.ringbuf:
            pages = self.buffer_pages or RINGBUF_PAGES
            flags += ["-DUSE_RINGBUF", "-DRINGBUF_PAGES=%d" % pages,
                      "-DWAKE_EVERY=%d" % wake_every(pages)]
        if self.summary_only:
            flags += ["-DSUMMARY_ONLY", "-DAGG_ENTRIES=%d" % self.agg_entries]
            flags += self.agg_cflags
        if self.owners:
            flags += ["-DOWNERS", "-DOWNER_ENTRIES=%d" % OWNER_ENTRIES]
        flags += offsets.cflags(self.kbtf)
        if self.headers is not None:
            flags += self.headers.cflags()
        for p in self.placements:
            flags += p.cflags()
        flags += self.filters.cflags()
        flags += ["-D" + d for d in self.defines]
        return flags

    # -- loading -----------------------------------------------------------

    def start(self, on_event):
        """Compile, attach, and deliver each event to on_event(event)."""
        require_root()
        bcc = import_bcc()
        if self.mode is None:
            self.plan()
        for p in self.placements:
            if p.skipped:
                self.warn("skipping %s: %s" % (p.hook.name, p.skipped))
            elif p.module and not p.loaded:
                self.warn("%s: %s" % (p.hook.name, p.status()))
        try:
            with open(BPF_SOURCE) as f:
                source = self.filters.pcap_c + f.read()
            with headers.compiling_with(self.headers):
                self.bpf = bcc.BPF(text=source.encode(), cflags=self.cflags())
        except Exception as e:
            raise RsttraceError("the BPF program did not compile or load (%s)"
                                % str(e).strip().splitlines()[-1],
                                "run `rsttrace doctor` to see what this "
                                "kernel lacks")
        try:
            self.check_modules()         # the first look: what is there
            if self.summary_only:
                self._count_into(b"agg_a")
            self._attach()
            self.filters.fill_maps(self.bpf)
            self._open(on_event)
            # bcc keeps one kernel symbol table per process, read at its
            # first use: one read before this program was loaded (an
            # earlier tracer's) lacks this program's own frames, which
            # then took the name of the symbol before them (_einittext).
            self.refresh_symbols(force=True)
            # and read kernel symbols now rather than at the first event
            # (a second or more on a slow machine): a module's frames are
            # named only while it is loaded, so the sooner the better
            self.ksym(0)
        except Exception:
            self.close()
            raise
        return self

    def _attach(self):
        for p in self.placements:
            if p.skipped:
                continue
            fn = "on_" + p.hook.key.lower()
            try:
                if p.hook.tracepoint:
                    self.bpf.attach_raw_tracepoint(tp=p.symbol.encode(),
                                                   fn_name=fn.encode())
                elif p.module:
                    self._attach_module_probe(p, fn)
                elif self.mode == "kprobe":
                    self.bpf.attach_kprobe(event=p.symbol.encode(),
                                           fn_name=fn.encode())
                # fentry: bcc attaches every kfunc__ program as it loads.
            except Exception as e:
                p.skipped = "attach failed: %s" % e
                self.warn("skipping %s: %s" % (p.hook.name, p.skipped))
        if all(p.skipped for p in self.placements):
            raise RsttraceError("no hook could be attached",
                                "run `rsttrace doctor`")
        if self.owners:
            self.bpf.attach_raw_tracepoint(tp=OWNER_TRACEPOINT[1].encode(),
                                           fn_name=OWNER_PROGRAM.encode())

    def _attach_module_probe(self, p, fn):
        """A function in a module: a kprobe the kernel arms whenever the
        module loads (rsttrace.trace.module_probes)."""
        if self.module_probes is None:
            tfs = features.tracefs()
            if tfs is None:
                raise OSError("no tracefs, where kprobes on module "
                              "functions are made")
            module_probes.remove_stale(tfs, self.warn)
            self.module_probes = module_probes.ModuleProbes(tfs)
        prog = self.bpf.load_func(fn.encode(), self.bpf.KPROBE)
        self.module_probes.attach(prog.fd, p.hook.name, p.module, p.symbol)

    def _open(self, on_event):
        events = self.bpf[b"events"]
        # The struct as bcc compiled it, where this bcc lets us see it.
        import bcc.table
        compiled = getattr(bcc.table, "_get_event_class", None)
        size = ctypes.sizeof(compiled(events)) if compiled else None
        if size is not None and size != abi.RAW_SIZE:
            raise RsttraceError(
                "struct rst_event is %d bytes in bpf/rsttrace.h but %d in "
                "rsttrace/abi.py" % (size, abi.RAW_SIZE),
                "change abi.RAW_FIELDS with the header")
        unpack = abi.unpack
        self._on_event = on_event

        def callback(_ctx_or_cpu, data, size):
            # ring buffer: (ctx, data, size); perf buffer: (cpu, data, size).
            # A negative value ends a ring buffer poll (Session.STOP).
            return on_event(unpack(data, size))

        if self.ringbuf:
            self.reader = ringbuf.open_reader(events)
            if self.reader is None:
                events.open_ring_buffer(callback)
        else:
            def lost(count):
                self.perf_lost += count
            events.open_perf_buffer(callback,
                                    page_cnt=self.buffer_pages or PERF_PAGES,
                                    lost_cb=lost)

    def _count_into(self, name):
        """Make the programs count into map `name` (agg_a or agg_b); returns
        once no program still counts into the other one (a map-in-map update
        waits for running programs, see agg_live in bpf/rsttrace.bpf.c)."""
        live = self.bpf[b"agg_live"]
        live[ctypes.c_int(0)] = ctypes.c_int(self.bpf[name].get_fd())
        self._agg_live = name

    def take_counts(self):
        """Summary mode: [(agg_key, count)] counted since the last call;
        the kernel forgets them (its maps hold one interval's keys)."""
        taken = self._agg_live
        self._count_into(b"agg_b" if taken == b"agg_a" else b"agg_a")
        table = self.bpf[taken]
        out = [(key, value.value) for key, value in table.items()]
        table.clear()
        return out

    def watch_netns(self, inode, on=True):
        """Add (or remove) a namespace to the kernel-side netns filter of
        a tracer made with Filters(netns_dynamic=True)."""
        table = self.bpf[b"filter_netns"]
        key = table.Key(inode)
        if on:
            table[key] = table.Leaf(1)
        else:
            try:
                del table[key]
            except KeyError:
                pass

    def attached(self):
        return [p for p in self.placements if not p.skipped]

    def visibility(self):
        """What this tracer can see on this kernel (trace.visibility)."""
        return Visibility.here(self.mode, self.packets)

    def poll(self, timeout_ms=100):
        """Deliver what the buffers hold; when they hold nothing, wait up to
        timeout_ms for the kernel's wakeup first (the kernel wakes the ring
        buffer's reader only now and then: bpf/rsttrace.bpf.c,
        WAKE_EVERY)."""
        if self.reader is not None:
            if not self.reader.pending():
                self.reader.wait(timeout_ms)
            self.reader.consume(self._on_event, abi.unpack_from)
        elif self.ringbuf:
            from bcc.libbcc import lib
            # not bcc's ring_buffer_consume(), which drops the count
            if not lib.bpf_consume_ringbuf(self.bpf._ringbuf_manager):
                self.bpf.ring_buffer_poll(timeout_ms)
        else:
            self.bpf.perf_buffer_poll(timeout_ms)

    def drain(self):
        """Deliver whatever is already in the buffers, without waiting."""
        if self.reader is not None:
            self.reader.consume(self._on_event, abi.unpack_from)
        elif self.ringbuf:
            self.bpf.ring_buffer_consume()
        else:
            self.bpf.perf_buffer_poll(0)

    def counts(self):
        """(matched, lost): events that passed the filters in the kernel,
        and of those the ones the buffer had no room for."""
        matched, kernel_lost = self.counter(abi.COUNT_MATCHED,
                                            abi.COUNT_LOST)
        # The perf buffer reports the same losses twice over: perf_submit
        # fails (counted in the kernel) and the buffer later writes a
        # PERF_RECORD_LOST for them (perf_output_begin(), kernel/events/
        # ring_buffer.c), which reaches lost_cb only once it has room again.
        # Where perf_event_output() returned nothing (older kernels),
        # bpf_perf_event_output() gave 0 on a full buffer and only the
        # second count exists: the larger of the two is right either way.
        return matched, max(kernel_lost, self.perf_lost)

    def counter(self, *slots):
        """The kernel's counts (abi.COUNT_*), summed over the CPUs."""
        table = self.bpf[b"counts"]
        return [sum(table[table.Key(s)]) for s in slots]

    def loss_cause(self):
        """Why events are counted lost: what had no room for them."""
        if self.summary_only:
            return "summary map full: %d keys" % self.agg_entries
        return "buffer full"

    def stack(self, stack_key):
        """Kernel addresses of a stack, innermost first; None when the
        stack table no longer has it."""
        table = self.bpf[b"stacks"]
        try:
            leaf = table[table.Key(stack_key)]
        except KeyError:
            return None
        return [ip for ip in leaf.ip if ip]

    def ksym(self, addr):
        return self.bpf.ksym(addr).decode("ascii", "replace")

    def check_modules(self):
        """Say which hooks modules loaded or unloaded since the last look
        brought or took away; True when the modules changed."""
        return self.module_watch.check(self.attached())

    def refresh_symbols(self, force=False):
        """True when kernel symbols changed since the last call (with
        `force`, read again in any case): names given before may be wrong
        now."""
        return self.module_watch.refresh(self.attached(), force)

    def detach(self):
        """Stop the probes and keep the maps and buffers: what was counted
        and buffered until now can still be read, and nothing is added.
        (bcc's own cleanup() does this first, then frees everything.)"""
        bpf = self.bpf
        if bpf is None:
            return
        for event in list(getattr(bpf, "kprobe_fds", ())):
            bpf.detach_kprobe_event(event)
        for tp in list(getattr(bpf, "raw_tracepoint_fds", ())):
            bpf.detach_raw_tracepoint(tp)
        for fn in list(getattr(bpf, "kfunc_entry_fds", ())):
            bpf.detach_kfunc(fn)
        if self.module_probes is not None:
            self.module_probes.detach()

    def close(self):
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.module_probes is not None:
            self.module_probes.remove()
            self.module_probes = None
        if self.bpf is not None:
            try:
                self.bpf.cleanup()
            finally:
                self.bpf = None
