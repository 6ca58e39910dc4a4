"""Compile bpf/rsttrace.bpf.c with bcc, attach it, and read its events.

    tracer = Tracer(mode="auto", filters=Filters())
    tracer.start(on_event)      # on_event(raw bcc event struct) -> 0, or
                                # < 0 to end the poll in progress
    while ...: tracer.poll(100)
    tracer.close()
"""

import ctypes
import os
import sys

from rsttrace import abi
from rsttrace.errors import RsttraceError
from rsttrace.kernel import features, offsets
from rsttrace.trace import hooks, ringbuf
from rsttrace.trace.filters import Filters
from rsttrace.trace.visibility import Visibility

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPF_DIR = os.path.join(_PACKAGE, "bpf")
if not os.path.isdir(BPF_DIR):  # running from a source checkout
    BPF_DIR = os.path.join(os.path.dirname(_PACKAGE), "bpf")
BPF_SOURCE = os.path.join(BPF_DIR, "rsttrace.bpf.c")

STACK_ENTRIES = 16384
RINGBUF_PAGES = 1024         # 4 MiB, shared by all CPUs
PERF_PAGES = 256             # per CPU, where there is no ring buffer
AGG_ENTRIES = 16384          # distinct keys in summary mode


def wake_every(pages):
    """Events a CPU writes between two wakeups of the reader: all CPUs
    together then fill at most a quarter of a buffer of `pages` before the
    reader is woken (bpf/rsttrace.bpf.c, BPF_RB_NO_WAKEUP)."""
    records = pages * 4096 // ringbuf.RECORD_SIZE
    return max(1, records // (4 * os.cpu_count()))


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


def require_root():
    if os.geteuid() != 0:
        raise RsttraceError("rsttrace needs root to load BPF programs",
                            "run it with sudo")


class Tracer:
    """The BPF side of rsttrace, for one attach mode and one filter set."""

    def __init__(self, mode="auto", filters=None, warn=None, packets=False,
                 buffer_pages=None, summary_only=False, defines=()):
        self.requested_mode = mode
        self.summary_only = summary_only
        self.buffer_pages = buffer_pages
        self.packets = packets
        self.filters = filters or Filters()
        # more -D macros, for tests and benchmarks: STACK_MEMO_CHECK,
        # NO_STACK_MEMO (bpf/rsttrace.bpf.c, stack_key())
        self.defines = tuple(defines)
        self.warn = warn or (lambda msg: print("rsttrace: " + msg,
                                               file=sys.stderr))
        self.bpf = None
        self.mode = None
        self.placements = []
        self.kbtf = None
        self.ringbuf = False
        self.reader = None          # ringbuf.RingReader, where it applies
        self.perf_lost = 0

    # -- planning (no BPF loaded yet) --------------------------------------

    def plan(self):
        """Decide mode, hooks and flags; raise RsttraceError if impossible."""
        require_root()
        import_bcc()
        features.tracefs(mount=True)
        self.kbtf = features.load_btf()
        if self.kbtf is None and not features.headers_match():
            raise RsttraceError(
                "this kernel has no BTF (/sys/kernel/btf/vmlinux) and no "
                "matching headers, so rsttrace cannot know its struct layout",
                "install linux-headers-%s, or use a kernel built with "
                "CONFIG_DEBUG_INFO_BTF=y" % features.release())
        if self.requested_mode in (None, "auto"):
            self.mode = hooks.auto_mode()
        else:
            hooks.check_mode(self.requested_mode)
            self.mode = self.requested_mode
        self.placements = [hooks.place(h, self.mode, self.kbtf)
                           for h in hooks.hooks_for(self.mode)]
        if self.packets:
            self.placements.append(hooks.place(hooks.PACKET_HOOK, self.mode,
                                               self.kbtf))
        if not any(not p.skipped for p in self.placements):
            raise RsttraceError(
                "none of rsttrace's hooks exist in this kernel for mode %s: %s"
                % (self.mode, "; ".join(p.skipped for p in self.placements)),
                "try another --mode")
        self.ringbuf = features.ringbuf_supported()
        return self

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
            flags += ["-DSUMMARY_ONLY", "-DAGG_ENTRIES=%d" % AGG_ENTRIES]
        flags += offsets.cflags(self.kbtf)
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
        try:
            self.bpf = bcc.BPF(src_file=BPF_SOURCE.encode(),
                               cflags=self.cflags())
        except Exception as e:
            raise RsttraceError("the BPF program did not compile or load (%s)"
                                % str(e).strip().splitlines()[-1],
                                "run `rsttrace doctor` to see what this "
                                "kernel lacks")
        try:
            self._attach()
            self.filters.fill_maps(self.bpf)
            self._open(on_event)
            self.refresh_symbols()          # note the modules loaded now
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
        matched, lost = self.counter(abi.COUNT_MATCHED, abi.COUNT_LOST)
        return matched, lost + self.perf_lost

    def counter(self, *slots):
        """The kernel's counts (abi.COUNT_*), summed over the CPUs."""
        table = self.bpf[b"counts"]
        return [sum(table[table.Key(s)]) for s in slots]

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

    def refresh_symbols(self):
        """Reload kernel symbols if modules were loaded or unloaded since
        the last look (bcc reads kallsyms once: a module loaded later, such
        as nf_reject_ipv4 when a REJECT rule appears, would be named after
        whatever symbol precedes it). True when the symbols changed."""
        try:
            with open("/proc/modules", "rb") as f:
                modules = hash(b"".join(line.split(b" ", 1)[0]
                                        for line in f))
        except OSError:
            return False
        if modules == getattr(self, "_modules", modules):
            self._modules = modules
            return False
        self._modules = modules
        # A new kernel symbol cache: bcc_symcache_refresh() does not reload
        # kernel symbols once loaded (bcc's KSyms::refresh fills only an
        # empty table), so drop the cache; bcc makes a fresh one on next use.
        import bcc
        from bcc.libbcc import lib
        old = bcc.BPF._sym_caches.pop(-1, None)
        if old is not None:
            lib.bcc_free_symcache(old.cache, -1)
        return True

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

    def close(self):
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.bpf is not None:
            try:
                self.bpf.cleanup()
            finally:
                self.bpf = None
