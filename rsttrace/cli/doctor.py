"""`rsttrace doctor`: what this kernel supports and what trace will do."""

import json
import os
import sys

import click
from tabulate import tabulate

from rsttrace.errors import RsttraceError
from rsttrace.kernel import features, headers
from rsttrace.trace import hooks
from rsttrace.trace.visibility import Visibility


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
def doctor(as_json):
    """What this kernel supports and which mode `trace` will use."""
    mode, why = mode_choice()
    rows = checks()
    hook_table = hook_rows(mode or "tracepoint")
    # with --packets, as `trace --packets` would run
    not_seen = Visibility.here(mode, True).blind_spots() if mode else {}
    if as_json:
        click.echo(json.dumps({
            "checks": {c: v for c, v, _ in rows},
            "mode": mode, "mode_error": why, "not_seen": not_seen,
            "hooks": [{"hook": h, "symbol": s, "status": st}
                      for h, s, st in hook_table]}, indent=2))
        return
    click.echo(tabulate([(c, _show(v), n) for c, v, n in rows],
                        headers=["check", "value", "note"]))
    click.echo()
    click.echo(tabulate(hook_table, headers=["hook", "symbol", "status"]))
    click.echo()
    if not mode:
        click.echo("trace cannot run here: %s" % why)
        sys.exit(1)
    click.echo("trace will use %s mode" % mode)
    for text in not_seen.values():
        click.echo("  not seen in that mode: %s" % text)


def _show(v):
    return ("yes" if v is True else "no" if v is False else
            "unknown (run as root)" if v is None else v)


def headers_note(tree):
    if tree is None:
        return ("bcc falls back on %s" % headers.KHEADERS
                if headers.kheaders_possible() else
                "install linux-headers-%s or the generic linux-headers "
                "package" % features.release())
    where = {"env": "from %s" % headers.ENV, "modules": "",
             "generic": "found in /usr/src"}[tree.origin]
    whose = ("this kernel's own" if tree.matches(features.release()) else
             "another kernel's: serve bcc's includes only")
    return "; ".join(filter(None, (whose, where)))


def checks():
    """[(check, value, note)] for this machine, asked of the kernel."""
    kbtf = features.load_btf()
    root = os.geteuid() == 0
    tree = headers.find()
    bcc = features.bcc_version()
    tfs = features.tracefs()
    ringbuf = features.ringbuf_supported()
    return [
        ("kernel", features.release(), ""),
        ("root", root, "" if root else "trace needs root"),
        ("BTF", kbtf is not None,
         "/sys/kernel/btf/vmlinux: struct offsets read from it"
         if kbtf is not None else "offsets need matching headers"),
        ("headers", tree.build if tree else False, headers_note(tree)),
        ("bcc", bcc or False,
         "" if bcc else "install python3-bpfcc (scripts/setup)"),
        ("tracefs", tfs or False,
         "" if tfs else "mount -t tracefs tracefs /sys/kernel/tracing"),
        ("kprobes", features.kprobes_supported(), ""),
        ("fentry", features.fentry_supported(),
         "needs BTF and the BPF `tracing` program type"),
        ("raw tracepoints", features.raw_tracepoints_supported(), ""),
        ("ring buffer", ringbuf, "" if ringbuf else "perf buffer used"),
        ("HZ", features.hz(), "turns sk_lingertime into seconds"),
    ]


def hook_rows(mode):
    """[(hook, symbol or '-', status)] for the hooks of `mode`."""
    kbtf = features.load_btf()
    rows = []
    for h in hooks.ALL_HOOKS:
        try:
            p = hooks.place(h, mode if not h.tracepoint else "tracepoint",
                            kbtf)
        except RsttraceError as e:
            rows.append((h.name, "-", "unusable: %s" % e))
            continue
        if p.skipped:       # inlined, not in this kernel, not this mode
            rows.append((h.name, "-", p.skipped))
            continue
        args = ", ".join("%s=arg%d" % (r, i) for r, i in
                         sorted(p.positions.items()) if i >= 0)
        if h not in hooks.hooks_for(mode, packets=True):
            use = "present, not used"
        elif h not in hooks.hooks_for(mode):        # opt-in
            use = "used with --packets"
        elif p.module:                  # in a module, loaded or not
            use = p.status() + ("; used" if p.loaded else "")
        else:
            use = "used"
        rows.append((h.name, p.symbol, "%s (args from %s: %s)"
                     % (use, p.source, args or "none")))
    return rows


def mode_choice():
    """(mode trace would use, None) or (None, why it cannot run)."""
    try:
        return hooks.auto_mode(), None
    except RsttraceError as e:
        return None, str(e)
