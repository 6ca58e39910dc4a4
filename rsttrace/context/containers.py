"""Which container a process runs in, and which containers live in a
network namespace: one pass over /proc (each process's netns link, and the
cgroup of those outside the host's namespace), kept and scanned again
lazily (lazy.Rescanned). Containers sharing the host's network namespace
are not counted as its containers: an event there is the host's."""

import collections

from rsttrace.context import cgroups
from rsttrace.context.lazy import Rescanned
from rsttrace.context.runtimes import Runtimes

# What a namespace holds: its containers (Container tuples) and their pids.
Netns = collections.namedtuple("Netns", "containers pids")
Pod = collections.namedtuple("Pod", "namespace name")


class ContainerIndex:
    def __init__(self, proc, runtimes=None, **kw):
        self.proc = proc
        self.runtimes = runtimes or Runtimes(proc)
        self.host = proc.netns(1)
        self._described = {}        # container id -> Container
        self.by_ns = Rescanned(self.scan, **kw)
        self._pid_cache = {}        # pid -> Container or None, per scan
        self._pid_scan = None

    def describe(self, pid):
        """The Container process `pid` runs in, or None."""
        match = cgroups.container_of(self.proc.cgroup(pid))
        if match is None:
            return None
        hit = self._described.get(match.id)
        if hit is None:
            hit = self._described[match.id] = self.runtimes.describe(pid,
                                                                     match)
        return hit

    def scan(self):
        """{netns inode: Netns} for the namespaces other than the host's."""
        spaces = {}
        seen = {}
        for pid in self.proc.pids():
            ns = self.proc.netns(pid)
            if ns is None or ns == self.host:
                continue
            entry = spaces.setdefault(ns, Netns([], []))
            entry.pids.append(pid)
            ctr = self.describe(pid)
            if ctr is not None and ctr.id not in seen:
                seen[ctr.id] = ctr
                entry.containers.append(ctr)
        # forget the containers that are gone
        self._described = {i: c for i, c in self._described.items()
                           if i in seen}
        self._pid_cache = {}
        return spaces

    def of_pid(self, pid):
        """The Container of a (live) process, cached until the next scan."""
        if self._pid_scan != self.by_ns.scans:
            self._pid_cache, self._pid_scan = {}, self.by_ns.scans
        if pid not in self._pid_cache:
            self._pid_cache[pid] = self.describe(pid)
        return self._pid_cache[pid]

    def of_netns(self, inode):
        """(container, pod) of an event in namespace `inode`: its only
        application container (else its pod's only sandbox, else None),
        and the Pod its containers belong to."""
        if inode is None or inode == self.host:
            return None, None
        entry = self.by_ns.get(inode)
        if entry is None:
            return None, None
        apps = [c for c in entry.containers if not c.sandbox]
        boxes = [c for c in entry.containers if c.sandbox]
        pick = apps[0] if len(apps) == 1 else \
            boxes[0] if not apps and len(boxes) == 1 else None
        pods = {pod_of(c) for c in entry.containers} - {None}
        return pick, (pods.pop() if len(pods) == 1 else None)

    def containers(self):
        """[(Container, netns inode)] of every container seen in the last
        scan (scanning now)."""
        self.by_ns.rescan()
        return [(c, ns) for ns, entry in self.by_ns.table.items()
                for c in entry.containers]


def pod_of(container):
    """The Pod of a container, or None."""
    if container is None or container.pod_name is None:
        return None
    return Pod(container.pod_namespace, container.pod_name)
