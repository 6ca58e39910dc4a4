"""Event filters: parsed and checked here, applied in the kernel.

Each filter becomes a -D flag (and, for sets, entries in a BPF hash map),
so a filtered-out RST costs the probe and nothing in user space.
"""

import ipaddress
import os

from rsttrace.errors import UsageError

NETNS_DIR = "/var/run/netns"
FILTER_MAX = 256        # entries per set-valued filter (bpf/rsttrace.h)


class Filters:
    """What to keep. Empty sets mean 'everything'."""

    def __init__(self, ports=(), hosts=(), pid=None, comm=None, netns=(),
                 family=None, netns_dynamic=False):
        self.ports = set(ports)
        self.hosts = set(hosts)          # ipaddress.IPv6Address (v4-mapped)
        self.pid = pid
        self.comm = comm
        self.netns = set(netns)          # namespace inode numbers
        self.family = family             # 4, 6 or None
        # netns filter on, its set filled later (Tracer.watch_netns)
        self.netns_dynamic = netns_dynamic

    def cflags(self):
        flags = []
        if self.family:
            flags.append("-DFILTER_FAMILY=%d" % self.family)
        if self.pid is not None:
            flags.append("-DFILTER_PID=%d" % self.pid)
        if self.ports:
            flags.append("-DFILTER_PORTS")
        if self.hosts:
            flags.append("-DFILTER_HOSTS")
        if self.comm is not None:
            flags.append("-DFILTER_COMM")
        if self.netns or self.netns_dynamic:
            flags.append("-DFILTER_NETNS")
        return flags

    def fill_maps(self, bpf):
        """Put the set-valued filters into the program's maps."""
        import ctypes as ct
        if self.ports:
            table = bpf[b"filter_ports"]
            for port in self.ports:
                table[table.Key(port)] = table.Leaf(1)
        if self.hosts:
            table = bpf[b"filter_hosts"]
            for addr in self.hosts:
                key = table.Key()
                ct.memmove(ct.byref(key), addr.packed, 16)
                table[key] = table.Leaf(1)
        if self.netns:
            table = bpf[b"filter_netns"]
            for inum in self.netns:
                table[table.Key(inum)] = table.Leaf(1)
        if self.comm is not None:
            table = bpf[b"filter_comm"]
            leaf = table.Leaf()
            raw = self.comm.encode()
            ct.memmove(ct.byref(leaf), raw, len(raw))
            table[table.Key(0)] = leaf

    def describe(self):
        parts = []
        if self.ports:
            parts.append("port " + ",".join(str(p) for p in sorted(self.ports)))
        if self.hosts:
            parts.append("host " + ",".join(str(display_addr(a))
                                            for a in sorted(self.hosts)))
        if self.pid is not None:
            parts.append("pid %d" % self.pid)
        if self.comm is not None:
            parts.append("comm %s" % self.comm)
        if self.netns:
            parts.append("netns " + ",".join(str(n) for n in sorted(self.netns)))
        if self.family:
            parts.append("IPv%d" % self.family)
        return ", ".join(parts) or "none"


def display_addr(addr6):
    """An IPv6Address as shown to users: v4-mapped ones as IPv4."""
    return addr6.ipv4_mapped or addr6


def items(values):
    """The values of a repeatable option, each of which may be a
    comma-separated list."""
    for value in values:
        for part in str(value).split(","):
            if part.strip():
                yield part.strip()


def parse_ports(values):
    ports = set()
    for part in items(values):
        if not (part.isascii() and part.isdigit()) or \
                not 0 < int(part) < 65536:
            raise UsageError(
                "--port %s is not a TCP port" % part,
                "give a number from 1 to 65535, or a comma-separated list")
        ports.add(int(part))
    return ports


def parse_hosts(values):
    hosts = set()
    for part in items(values):
        try:
            addr = ipaddress.ip_address(part.strip("[]"))
        except ValueError:
            raise UsageError(
                "--host %s is not an IP address" % part,
                "give an IPv4 or IPv6 address such as 10.0.0.1 or ::1")
        if addr.version == 4:
            addr = ipaddress.IPv6Address("::ffff:" + str(addr))
        hosts.add(addr)
    return hosts


def parse_pid(value):
    if value is None:
        return None
    if value <= 0:
        raise UsageError("--pid %d is not a process id" % value,
                         "give the pid of a running process")
    if not os.path.exists("/proc/%d" % value):
        raise UsageError("no process with pid %d" % value,
                         "check the pid with `ps -p %d`" % value)
    return value


def parse_comm(value):
    if value is None:
        return None
    if not value or len(value.encode()) > 15:
        raise UsageError(
            "--comm %r is not a process name" % value,
            "the kernel keeps at most 15 bytes of a name (see `ps -o comm`)")
    return value


def netns_inode(spec):
    """A network namespace as its inode: a number, a name under
    /var/run/netns, or a path such as /proc/PID/ns/net."""
    spec = str(spec)
    if spec.isascii() and spec.isdigit():
        return int(spec)
    path = spec if "/" in spec else os.path.join(NETNS_DIR, spec)
    try:
        return os.stat(path).st_ino
    except OSError:
        raise UsageError(
            "--netns %s is not a network namespace" % spec,
            "give an inode number (`lsns -t net`), a name from "
            "`ip netns list`, or a path like /proc/PID/ns/net")


def parse_netns(values):
    return {netns_inode(v) for v in items(values)}


def build(ports=(), hosts=(), pid=None, comm=None, netns=(), ipv4=False,
          ipv6=False):
    if ipv4 and ipv6:
        raise UsageError("-4 and -6 exclude each other",
                         "give one of them, or neither for both")
    filt = Filters(ports=parse_ports(ports), hosts=parse_hosts(hosts),
                   pid=parse_pid(pid), comm=parse_comm(comm),
                   netns=parse_netns(netns),
                   family=4 if ipv4 else 6 if ipv6 else None)
    for name, values in (("--port", filt.ports), ("--host", filt.hosts),
                         ("--netns", filt.netns)):
        if len(values) > FILTER_MAX:
            raise UsageError("%s has %d values, more than the %d rsttrace "
                             "can filter on in the kernel"
                             % (name, len(values), FILTER_MAX),
                             "trace without it and filter the JSON output")
    return filt
