"""The kernel's timers and limits: keepalive, orphans over
tcp_max_orphans."""

import socket
import time

from rsttrace import abi
from rsttrace.lab import traffic
from rsttrace.lab.catalogue.registry import scenario


def _probe_every_second(sock):
    """Keepalive on, the first probe after 1 s idle, then one a second."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)


@scenario("keepalive-timeout", "keepalive probes to a peer that went "
          "silent", ["004"])
def _keepalive(pair):
    cli, srv = traffic.connected(pair, 4)
    _probe_every_second(cli)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 1)
    traffic.block_input(pair, "b")             # the peer vanishes
    return traffic.recv_error(cli)


@scenario("keepalive-vanished-peer", "a keepalive probe reaches a peer "
          "whose socket is gone (past its FIN_WAIT timeout)", ["004"])
def _keepalive_vanished(pair):
    cli, srv = traffic.connected(pair, 4)
    _probe_every_second(cli)
    traffic.block_output(pair, "b")
    traffic.linger0(srv)
    srv.close()
    traffic.unblock(pair, "b")
    return traffic.recv_error(cli)   # the probe's answer is an RST


MAX_ORPHANS = "/proc/sys/net/ipv4/tcp_max_orphans"
CLOSE_ATTEMPTS = 5      # closes tried before memory-pressure gives up
SOCKSTAT = "/proc/net/sockstat"


def _orphan_count():
    """The host's orphaned TCP sockets, every namespace's: /proc/net/sockstat
    (tcp_orphan_count_sum(), the exact sum, not tcp_check_oom()'s cache)."""
    with open(SOCKSTAT) as f:
        for line in f:
            words = line.split()
            if words and words[0] == "TCP:" and "orphan" in words:
                return int(words[words.index("orphan") + 1])
    return 0


def _wait_for_orphans(n, timeout=5.0):
    """Until the host has n orphans (a slow guest takes a while to close
    them all); a clear error if it never does."""
    deadline = time.monotonic() + timeout
    while _orphan_count() < n:
        if time.monotonic() > deadline:
            raise RuntimeError("memory-pressure: the host has %d orphaned "
                               "TCP sockets after %g s, %d wanted"
                               % (_orphan_count(), timeout, n))
        time.sleep(0.05)


def _orphans(pair, n):
    """n orphaned sockets on side a: connections closed while b drops
    their FINs, left retransmitting in FIN_WAIT1."""
    lst, port = traffic.listener(pair, "b", backlog=n)
    clients = []
    for _ in range(n):
        clients.append(pair.socket("a", socket.AF_INET))
        clients[-1].connect((pair.ipv4["b"], port))
        srv, _ = lst.accept()
        pair.keep(srv)       # closed with the pair, not here
    lst.close()
    traffic.block_input(pair, "b", "tcp dport %d" % port)
    for cli in clients:
        cli.close()


@scenario("memory-pressure", "closing a connection while the host has more "
          "orphaned sockets than net.ipv4.tcp_max_orphans allows: the kernel "
          "aborts it with an RST instead of a FIN handshake", [],
          counters={"a": {"TcpExt:TCPAbortOnMemory": ">=1"}},
          host_wide="net.ipv4.tcp_max_orphans",
          kernel_note="__tcp_close() orphans the socket, then "
          "tcp_check_oom() compares the host's orphan count with "
          "tcp_max_orphans (and TCP memory with tcp_mem) and aborts with an "
          "RST in state CLOSE (reason TCP_ABORT_ON_MEMORY since 6.10). The "
          "count it reads lags: before 5.16 a percpu_counter whose quick read "
          "misses up to 32 orphans per CPU, since then tcp_orphan_cache, "
          "refreshed by a deferrable 100 ms timer (tcp_orphan_update) that "
          "an idle or slow CPU runs late; so the scenario makes 64 orphans "
          "first, waits a moment, and closes again if a close was not "
          "aborted.")
def _memory_pressure(pair):
    # tcp_max_orphans exists only in the initial network namespace and
    # counts the orphans of every namespace.
    _orphans(pair, 64)
    _wait_for_orphans(64)
    with open(MAX_ORPHANS) as f:
        old = f.read().strip()
    for attempt in range(1, CLOSE_ATTEMPTS + 1):
        # tcp_orphan_cache catches up (its timer is late on a busy guest)
        time.sleep(0.3 * attempt)
        cli, srv = traffic.connected(pair, 4)
        try:
            with open(MAX_ORPHANS, "w") as f:
                f.write("0")
            cli.close()
        finally:
            with open(MAX_ORPHANS, "w") as f:
                f.write(old)
        if _reset_by_peer(srv):
            return ("tcp_max_orphans 0 for the close, %s again (close %d)"
                    % (old, attempt))
    raise RuntimeError("memory-pressure: %d closes with tcp_max_orphans 0 "
                       "and %d orphans on the host ended gracefully, none "
                       "was aborted" % (CLOSE_ATTEMPTS, _orphan_count()))


def _reset_by_peer(srv, timeout=2.0):
    """Whether b's end of a connection a closed went to CLOSE (a's RST,
    after its FIN: tcp_reset() in CLOSE_WAIT) rather than staying in
    CLOSE_WAIT (a graceful close), within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = srv.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
        if abi.TCP_STATES.get(info[0]) == "CLOSE":
            return True
        time.sleep(0.02)
    return False
