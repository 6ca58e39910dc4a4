"""The process that owns (or last owned) the socket behind an RST.

In softirq, where most RSTs are made, the task on the CPU is whoever was
interrupted. The owner comes instead from, in this order:

  socket  the kernel's record (bpf/rsttrace.bpf.c, on_sock_set_state):
          the process that last listened on, connected or closed the
          socket (for a request sock, its listener); kept after the
          process exits, so an orphaned socket names its last owner
  task    the event ran in process context on the socket: that process
  fd      a process holding the socket's file (its inode, read from
          sk->sk_socket, in /proc/PID/fd): sockets made by accept(),
          which are born in softirq and never recorded

and when none applies, owner_source says why there is no owner:
  no-socket  the RST answers a packet that matched no socket
  time-wait  only the socket's TIME_WAIT remnant was left
  unknown    a socket no process was seen with (e.g. accepted and closed
             again between two looks at /proc)
"""

from rsttrace import abi
from rsttrace.context.lazy import Rescanned
from rsttrace.trace.decode import _comm

FD_INDEX_MAX = 1 << 20   # sockets remembered from one scan
# where the raw event (abi.unpack_from) has what owner() reads
_FLAGS, _OWNER_PID, _OWNER_COMM, _PID, _COMM, _SOCK_INO = (
    abi.AT[name] for name in ("flags", "owner_pid", "owner_comm", "pid",
                              "comm", "sock_ino"))


def scan_fds(proc):
    """{socket inode: (pid, comm)} of the processes holding sockets, from
    one pass over /proc/*/fd (of a shared socket, the holder with the
    lowest pid: the parent of the others, usually)."""
    holders = {}
    for pid in proc.pids():
        inodes = proc.socket_inodes(pid)
        if not inodes:
            continue
        comm = proc.comm(pid)
        for ino in inodes:
            holders.setdefault(ino, (pid, comm))
        if len(holders) >= FD_INDEX_MAX:
            break
    return holders


def fd_index(proc, **kw):
    """Socket inode -> (pid, comm), scanned lazily (lazy.Rescanned)."""
    return Rescanned(lambda: scan_fds(proc), **kw)


class Owners:
    """owner(shape, ev) -> (pid, comm, source) of a raw event and its
    Shape (rsttrace.trace.decode; its state and context), see the module
    doc."""

    def __init__(self, fds):
        self.fds = fds           # fd_index()

    def owner(self, shape, ev):
        flags = ev[_FLAGS]
        if flags & abi.EV_OWNER:
            return ev[_OWNER_PID], _comm(ev[_OWNER_COMM]), "socket"
        if not flags & abi.EV_SOCK:
            return None, None, "no-socket"
        if shape.state == "TIME_WAIT":
            return None, None, "time-wait"
        if shape.context == "process":
            return ev[_PID], _comm(ev[_COMM]), "task"
        ino = ev[_SOCK_INO]
        if ino:
            hit = self.fds.get(ino)
            if hit is not None:
                return hit[0], hit[1], "fd"
        return None, None, "unknown"
