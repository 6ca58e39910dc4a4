"""Two network namespaces joined by a veth pair, for provoking RSTs.

    with NamespacePair() as pair:
        srv = pair.socket("b", socket.AF_INET)   # a socket living in b
        pair.sysctl("b", "net.ipv4.tcp_abort_on_overflow", 1)

Side "a" is 198.18.<n>.1 / 2001:db8:<n>::1, side "b" .2 / ::2. Both ranges
are reserved for tests and documentation, and the namespaces have no route
anywhere else: nothing leaves them.
"""

import atexit
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import threading
import time

from pyroute2 import NetNS, netns

from rsttrace.lab import counters as kcounters

IFA_F_NODAD = 0x02
_counter = itertools.count()
_live = set()


_owner = os.getpid()


def _cleanup_all():
    # Only in the process that made the namespaces: pyroute2 forks helper
    # processes, which inherit this atexit hook.
    if os.getpid() != _owner:
        return
    for pair in list(_live):
        pair.close()


atexit.register(_cleanup_all)


def _terminate_cleanly():
    """Make SIGTERM unwind like Ctrl-C (so `with` blocks and atexit delete
    the namespaces) unless the program already handles it."""
    if (signal.getsignal(signal.SIGTERM) == signal.SIG_DFL and
            threading.current_thread() is threading.main_thread()):
        signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum, frame):
    if os.getpid() != _owner:           # a forked helper: die as by default
        os._exit(128 + signum)
    raise SystemExit(128 + signum)


def _lookup(ipr, ifname, tries=20):
    """The index of `ifname`, waiting briefly: a link just moved into a
    namespace is not always listed at once."""
    for _ in range(tries):
        found = ipr.link_lookup(ifname=ifname)
        if found:
            return found[0]
        time.sleep(0.05)
    raise RuntimeError("interface %s did not appear" % ifname)


def namespace_inode(name):
    return os.stat(os.path.join(netns.NETNS_RUN_DIR, name)).st_ino


class NamespacePair:
    """Namespaces `<prefix>-a` and `<prefix>-b`, veth between them."""

    def __init__(self, prefix=None, subnet=None):
        n = self._n = next(_counter) & 0xff
        self.prefix = prefix or "rsttrace-%d-%d" % (os.getpid(), n)
        self.subnet = (subnet if subnet is not None
                       else (os.getpid() + n) % 250 + 1)
        self.names = {"a": self.prefix + "-a", "b": self.prefix + "-b"}
        self.ipv4 = {"a": "198.18.%d.1" % self.subnet,
                     "b": "198.18.%d.2" % self.subnet}
        self.ipv6 = {"a": "2001:db8:%x::1" % self.subnet,
                     "b": "2001:db8:%x::2" % self.subnet}
        self.created = False
        self._sockets = []
        self._made = []
        # lets a tracer read the RSTs so far (the scenario runner sets it):
        # before a scenario unloads the modules that sent them, whose
        # symbols then name their stack frames
        self.catch_up = lambda: None

    # -- life cycle -------------------------------------------------------

    def __enter__(self):
        self.create()
        return self

    def __exit__(self, *exc):
        self.close()

    def create(self):
        _terminate_cleanly()
        _live.add(self)
        try:
            for name in self.names.values():
                if os.path.exists(os.path.join(netns.NETNS_RUN_DIR, name)):
                    raise FileExistsError(
                        "network namespace %s already exists" % name)
                netns.create(name)
                self._made.append(name)
            self.created = True
            tag = "rt%x" % ((os.getpid() << 8 | self._n) & 0xffffffff)
            veth_a, veth_b = tag + "a", tag + "b"
            self.veth = {"a": veth_a, "b": veth_b}
            # Made inside a with its peer end created straight in b: the
            # host namespace never holds either end.
            with NetNS(self.names["a"]) as ns:
                ns.link("add", ifname=veth_a, kind="veth",
                        peer={"ifname": veth_b,
                              "net_ns_fd": self.names["b"]})
            for side, ifname in (("a", veth_a), ("b", veth_b)):
                with NetNS(self.names[side]) as ns:
                    lo = ns.link_lookup(ifname="lo")[0]
                    ns.link("set", index=lo, state="up")
                    idx = _lookup(ns, ifname)
                    ns.addr("add", index=idx, address=self.ipv4[side],
                            prefixlen=24)
                    ns.addr("add", index=idx, address=self.ipv6[side],
                            prefixlen=64, flags=IFA_F_NODAD)
                    ns.link("set", index=idx, state="up")
        except Exception:
            self.close()
            raise
        return self

    def close(self):
        """Close the sockets made here and delete both namespaces (which
        takes the veth pair with them). Safe to call twice."""
        self.close_sockets()
        for name in self._made:             # only what this pair made
            with contextlib.suppress(OSError, FileNotFoundError):
                netns.remove(name)
        self._made = []
        self.created = False
        _live.discard(self)

    def close_sockets(self):
        """Close the sockets made here (a long run of scenarios in one
        pair would run out of file descriptors otherwise)."""
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()
        self._sockets = []

    # -- inside the namespaces ----------------------------------------------

    @contextlib.contextmanager
    def entered(self, side):
        """Run the block with this thread in namespace `side`."""
        netns.pushns(self.names[side])
        try:
            yield
        finally:
            netns.popns()

    def socket(self, side, family=socket.AF_INET, kind=socket.SOCK_STREAM,
               proto=0):
        """A socket created in namespace `side`; closed by close()."""
        with self.entered(side):
            s = socket.socket(family, kind, proto)
        return self.keep(s)

    def keep(self, sock):
        """Close `sock` with the pair rather than when it goes out of
        scope (which would send a FIN in the middle of a scenario)."""
        self._sockets.append(sock)
        return sock

    def sysctl(self, side, name, value):
        path = "/proc/sys/" + name.replace(".", "/")
        with self.entered(side):
            with open(path, "w") as f:
                f.write(str(value))

    def read_sysctl(self, side, name):
        path = "/proc/sys/" + name.replace(".", "/")
        with self.entered(side):
            with open(path) as f:
                return f.read().strip()

    def counters(self, side):
        """The kernel's TCP counters in namespace `side` (counters.read)."""
        with self.entered(side):
            return kcounters.read()

    def run(self, side, *cmd):
        """Run a command inside namespace `side` (ip netns exec)."""
        res = subprocess.run(["ip", "netns", "exec", self.names[side]] +
                             list(cmd), capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError("%s in %s failed: %s" % (
                " ".join(cmd), self.names[side], res.stderr.strip()))
        return res.stdout

    def nft(self, side, rules):
        """Load nftables rules (nft -f syntax) into namespace `side`."""
        self.run(side, "nft", rules)

    def addr(self, side, family):
        return (self.ipv4 if family == socket.AF_INET else self.ipv6)[side]

    def inode(self, side):
        return namespace_inode(self.names[side])

    def inodes(self):
        return {self.inode("a"), self.inode("b")}
