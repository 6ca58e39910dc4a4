"""Modules that come and go while a tracer runs: which of its hooks a
module brought or took away (said on stderr), and kernel symbols read again
when modules change, since bcc reads kallsyms once and a module loaded
later (nf_reject_ipv4 when a REJECT rule appears) would be named after
whatever symbol precedes it. The session looks on every poll; a kprobe on a
module function is armed by the kernel itself as the module loads
(rsttrace.trace.module_probes), so nothing waits for this look.
"""

from rsttrace.kernel import features, modules


class ModuleWatch:
    def __init__(self, warn):
        self.warn = warn
        self._modules = None    # (name, address) loaded at the last look
        self._stale = False     # symbols changed since refresh() last said

    def check(self, placements):
        """Notice modules loaded or unloaded since the last look (the
        first look only records them) among the attached `placements`.
        True when the modules changed."""
        now = modules.instances()
        if self._modules is None or now == self._modules:
            self._modules = now
            return False
        before = {name for name, _ in self._modules}
        self._modules = now
        now = {name for name, _ in now}
        self._stale = True
        forget_symbols()
        for p in placements:
            if p.module in now and p.module not in before:
                self.warn("hook %s attached late: module %s loaded"
                          % (p.hook.name, p.module))
            elif p.module in before and p.module not in now:
                self.warn("hook %s idle: module %s unloaded (hooked again "
                          "when it loads)" % (p.hook.name, p.module))
        return True

    def refresh(self, placements, force=False):
        """True when kernel symbols changed since the last call (modules
        loaded or unloaded): names given before may be wrong now. With
        `force`, they are read again in any case."""
        if force:
            forget_symbols()
        self.check(placements)
        stale, self._stale = self._stale, False
        return stale or force


def forget_symbols():
    """Read kernel symbols again on next use, ours and bcc's. bcc's
    bcc_symcache_refresh() does not reload kernel symbols (KSyms::refresh
    fills only an empty table), so its cache is dropped; bcc makes a new
    one on use."""
    features.forget_symbols()
    import bcc
    from bcc.libbcc import lib
    old = bcc.BPF._sym_caches.pop(-1, None)
    if old is not None:
        lib.bcc_free_symcache(old.cache, -1)
