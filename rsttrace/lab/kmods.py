"""Kernel modules a scenario unloads and loads, put back as they were.

A scenario that shows a module loading while tracing (netfilter's REJECT
modules, loaded by the first rule that needs them) unloads them first,
as on a host where no rule has needed them yet, and afterwards leaves the
host's modules as it found them: what it loaded goes, what it unloaded
comes back. A module that is in use (a rule of the host's needs it) is
not unloaded: the scenario then shows a module that was already there.
On a kernel without loadable modules there is nothing to do.
"""

import contextlib
import subprocess
import time

from rsttrace.kernel import modules


def _run(*cmd):
    return subprocess.run(list(cmd), capture_output=True,
                          text=True).returncode == 0


def unload(names, patience=0.0):
    """Unload those of `names` (users before what they use) that are
    loaded and not in use, trying again for `patience` seconds (nf_tables
    lets go of a deleted rule's modules after an RCU grace period, from a
    work queue); returns the ones now unloaded."""
    gone = []
    deadline = time.monotonic() + patience
    todo = [n for n in names if n in modules.loaded()]
    while todo:
        failed = []
        for name in todo:
            # rmmod, not modprobe -r, which would take the modules it used
            # along (nf_tables, say) when nothing else uses them
            (gone if _run("rmmod", name) else failed).append(name)
        if not failed or time.monotonic() >= deadline:
            break
        todo = failed
        time.sleep(0.1)
    return [n for n in names if n in gone]


@contextlib.contextmanager
def kept(names, catch_up=lambda: None):
    """Run the block, then unload those of `names` it loaded and load the
    ones it unloaded (as found); catch_up() first (NamespacePair.catch_up:
    the tracer reads the RSTs while the modules that sent them are
    there)."""
    before = modules.loaded() & set(names)
    try:
        yield
    finally:
        catch_up()
        now = modules.loaded()
        unload([n for n in names if n in now and n not in before],
               patience=2.0)
        for name in reversed(names):
            if name in before and name not in modules.loaded():
                _run("modprobe", name)
