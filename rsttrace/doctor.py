"""`rsttrace doctor`: what this kernel supports and what trace will do."""

import os

from . import hooks, kernel
from .errors import RsttraceError


def checks():
    """[(check, value, note)] for this machine, asked of the kernel."""
    kbtf = kernel.load_btf()
    rows = []
    rows.append(("kernel", kernel.release(), ""))
    rows.append(("root", os.geteuid() == 0,
                 "" if os.geteuid() == 0 else "trace needs root"))
    rows.append(("BTF", kbtf is not None,
                 "/sys/kernel/btf/vmlinux: struct offsets read from it"
                 if kbtf is not None else "offsets need matching headers"))
    hdr = kernel.headers_dir()
    match = kernel.headers_match(hdr)
    rows.append(("headers", hdr or False,
                 "" if not hdr else "this kernel's own" if match else
                 "another kernel's: serve bcc's includes only"))
    rows.append(("bcc", kernel.bcc_version() or False,
                 "" if kernel.bcc_version() else
                 "install python3-bpfcc (scripts/setup)"))
    tfs = kernel.tracefs()
    rows.append(("tracefs", tfs or False,
                 "" if tfs else "mount -t tracefs tracefs /sys/kernel/tracing"))
    rows.append(("kprobes", kernel.kprobes_supported(), ""))
    rows.append(("fentry", kernel.fentry_supported(),
                 "needs BTF and the BPF `tracing` program type"))
    rows.append(("raw tracepoints", kernel.raw_tracepoints_supported(), ""))
    rows.append(("ring buffer", kernel.ringbuf_supported(),
                 "" if kernel.ringbuf_supported() else "perf buffer used"))
    rows.append(("HZ", kernel.hz(), "turns sk_lingertime into seconds"))
    return rows


def hook_rows(mode):
    """[(hook, symbol or '-', status)] for the hooks of `mode`."""
    kbtf = kernel.load_btf()
    rows = []
    for h in hooks.ALL_HOOKS:
        try:
            p = hooks.place(h, mode if not h.tracepoint else "tracepoint",
                            kbtf)
        except RsttraceError as e:
            rows.append((h.name, "-", "unusable: %s" % e))
            continue
        if p.skipped:
            rows.append((h.name, "-", "missing: " + p.skipped))
            continue
        args = ", ".join("%s=arg%d" % (r, i) for r, i in
                         sorted(p.positions.items()) if i >= 0)
        if h is hooks.PACKET_HOOK:      # opt-in, in every mode
            use = "used with --packets"
        elif (mode == "tracepoint") == h.tracepoint:
            use = "used"
        else:
            use = "present, not used"
        rows.append((h.name, p.symbol, "%s (args from %s: %s)"
                     % (use, p.source, args or "none")))
    return rows


def blind_spots(mode):
    """What `trace` in `mode` would not see here (hooks.blind_spots), from
    the hooks that would attach (--packets counted as given)."""
    kbtf = kernel.load_btf()
    attached = []
    for h in hooks.hooks_for(mode) + [hooks.PACKET_HOOK]:
        try:
            if not hooks.place(h, mode, kbtf).skipped:
                attached.append(h)
        except RsttraceError:
            pass
    spots = hooks.blind_spots(mode, attached)
    spots.pop("packets", None)      # trace --packets covers it
    return spots


def mode_choice():
    try:
        return hooks.auto_mode(), None
    except RsttraceError as e:
        return None, str(e)
