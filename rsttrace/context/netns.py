"""Network namespace inode -> name: `host` for the host's own (that of
PID 1), the `ip netns` name (a file under /run/netns) for a named one,
None for the rest (a container's, unless its runtime named it)."""

import os

from rsttrace.context.lazy import Rescanned
from rsttrace.trace.filters import NETNS_DIR

HOST = "host"


def scan_names(netns_dir=NETNS_DIR):
    """{namespace inode: name} of the namespaces named under netns_dir."""
    names = {}
    try:
        entries = sorted(os.listdir(netns_dir))
    except OSError:
        return names
    for name in entries:
        try:
            ino = os.stat(os.path.join(netns_dir, name)).st_ino
        except OSError:
            continue
        names.setdefault(ino, name)
    return names


class NetnsNames:
    def __init__(self, proc, netns_dir=NETNS_DIR, **kw):
        self.host = proc.netns(1)
        self.named = Rescanned(lambda: scan_names(netns_dir), **kw)

    def name(self, inode):
        if inode is None:
            return None
        if inode == self.host:
            return HOST
        return self.named.get(inode)
