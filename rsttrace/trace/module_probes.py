"""Kprobes on functions in modules, which the kernel arms whenever the
module loads.

A kprobe made through tracefs' kprobe_events on `MODULE:function` may name
a module that is not loaded: the kernel keeps it and registers it when the
module comes, before any of the module's code runs
(trace_kprobe_module_callback() on MODULE_STATE_COMING,
kernel/trace/trace_kprobe.c, every version rsttrace supports). When the
module is unloaded its kprobes are marked gone (kprobes_module_callback(),
kernel/kprobes.c) without holding the module, and the next load arms them
again. So an RST from netfilter's REJECT is seen from the first packet of
the rule that loads nf_reject_ipv4, however long after tracing started.
(bcc's attach_kprobe() asks the perf kprobe PMU first, whose kprobes are
not re-armed on a module's next load, and its event names cannot hold
`MODULE:`.)

Each tracer's events are in a group of their own, rsttrace_<pid>_<n>. A
run killed with SIGKILL cannot remove them: the next run removes those of
processes that are gone (remove_stale).
"""

import itertools
import os
import re

GROUP = re.compile(r"[pr]:(rsttrace_(\d+)_\d+)/(\w+) ")
_tracers = itertools.count()


def _write(tracefs, line):
    # tracefs wants one write per command, without O_TRUNC (which would
    # remove every kprobe event of the system) and without seeking
    fd = os.open(os.path.join(tracefs, "kprobe_events"),
                 os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


class ModuleProbes:
    """The kprobes of one tracer on module functions."""

    def __init__(self, tracefs):
        self.tracefs = tracefs
        self.group = "rsttrace_%d_%d" % (os.getpid(), next(_tracers))
        self.perf_fds = {}          # event -> perf event fd (None: closed)

    def attach(self, prog_fd, event, module, symbol):
        """Run kprobe program `prog_fd` at the entry of `symbol` in
        `module` whenever that module is loaded, from now on. Raises
        OSError with the kernel's reason."""
        from bcc.libbcc import lib
        _write(self.tracefs, "p:%s/%s %s:%s" % (self.group, event, module,
                                                symbol))
        self.perf_fds[event] = None
        fd = lib.bpf_attach_tracepoint(prog_fd, self.group.encode(),
                                       event.encode())
        if fd < 0:
            raise OSError(-fd if fd < -1 else 0, "cannot attach to the "
                          "kprobe event %s/%s" % (self.group, event))
        self.perf_fds[event] = fd

    def detach(self):
        """Stop the programs; the kprobe events stay until remove()."""
        from bcc.libbcc import lib
        for event, fd in self.perf_fds.items():
            if fd is not None:
                lib.bpf_close_perf_event_fd(fd)
                self.perf_fds[event] = None

    def remove(self):
        """Detach, and remove the kprobe events."""
        self.detach()
        for event in list(self.perf_fds):
            try:
                _write(self.tracefs, "-:%s/%s" % (self.group, event))
            except OSError:
                pass                # already gone
            del self.perf_fds[event]


def remove_stale(tracefs, say):
    """Remove the kprobe events of rsttrace runs that are gone, saying so
    with say(line). An event in use (its process alive, or a pid reused)
    is left alone: the kernel refuses to remove it, and so does this."""
    try:
        with open(os.path.join(tracefs, "kprobe_events")) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    removed = []
    for line in lines:
        m = GROUP.match(line + " ")
        if not m or os.path.exists("/proc/%s" % m.group(2)):
            continue
        try:
            _write(tracefs, "-:%s/%s" % (m.group(1), m.group(3)))
        except OSError:
            continue
        removed.append("%s/%s" % (m.group(1), m.group(3)))
    if removed:
        say("removed kprobe events %s, left by a run that is gone (killed "
            "before it could remove them)" % ", ".join(removed))
    return removed
