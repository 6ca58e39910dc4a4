"""The situations of the source articles (../shared/seeds), each reproduced
in its own pair of network namespaces, with the causes rsttrace should
report for it.

A scenario makes the RST happen between side "a" and side "b" (see
netns.NamespacePair) and declares what it expects: for each side, the
(kind, cause) of the events that side's kernel reports. `run_scenarios`
traces while they run and gives a verdict per scenario.
"""

import os
import select
import socket
import struct
import time

from . import craft, provoke
from .craft import ACK, RST, SYN

SOURCES = {
    "000": "000_4a120cfabbeb7e17.txt (no listener, linger 0, half-open, "
           "unread data, data on a closed connection)",
    "002": "002_37bc01fa81fe7989.txt (firewall, accept overflow, TIME_WAIT, "
           "listener closed, 5-tuple, close after connect)",
    "003": "003_bee906c291706243.txt (kernel view, RST validation, "
           "challenge ACK)",
    "004": "004_5ba78cea572cc63a.txt (keepalive, write after close, unread "
           "data, linger 0)",
}


class Expect:
    """An event a side's kernel must report: kind and cause."""

    def __init__(self, side, kind, cause):
        self.side, self.kind, self.cause = side, kind, cause

    def key(self):
        return (self.side, self.kind, self.cause)


class Scenario:
    def __init__(self, name, title, sources, fn, expects, allow=(),
                 needs=(), counters=None, kernel_note=None,
                 host_wide=None):
        self.name = name
        self.title = title
        self.sources = sources
        self.fn = fn
        self.expects = [Expect(*e) for e in expects]
        self.allow = {tuple(a) for a in allow}    # tolerated, not required
        self.needs = set(needs)                   # "challenge_ack", "packets"
        # the kernel's counters that must move, per side:
        # {"b": {"TcpExt:ListenOverflows": ">=1"}} (see counters.check)
        self.counters = counters or {}
        # what kernel history says about this situation (docs/kernel-matrix)
        self.kernel_note = kernel_note
        # a host-wide setting the scenario changes for a moment (not per
        # namespace): it runs only where that is allowed (host_wide_allowed)
        self.host_wide = host_wide

    def expected_text(self):
        if not self.expects:
            return "no RST"
        return ", ".join("%s %s: %s" % e.key() for e in self.expects)


CATALOGUE = []


def scenario(name, title, sources, expects, allow=(), needs=(),
             counters=None, kernel_note=None, host_wide=None):
    def register(fn):
        CATALOGUE.append(Scenario(name, title, sources, fn, expects, allow,
                                  needs, counters, kernel_note, host_wide))
        return fn
    return register


HOST_WIDE_ENV = "RSTTRACE_HOST_WIDE"


def host_wide_allowed():
    """Whether scenarios may change host-wide settings for a moment: only
    when asked (`--host-wide`, or RSTTRACE_HOST_WIDE=1 as the VM suite
    sets it), since other connections of the host would feel it."""
    return os.environ.get(HOST_WIDE_ENV) == "1"


# -- helpers ---------------------------------------------------------------

def _listener(pair, side="b", family=socket.AF_INET, backlog=8):
    lst = pair.socket(side, family)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((pair.addr(side, family), 0))
    lst.listen(backlog)
    return lst, lst.getsockname()[1]


def _block_output(pair, side, match=""):
    # chain names that are no nft keywords ("in", "out" are, in nft 0.9)
    pair.nft(side, "add table inet rsttrace_block; add chain inet "
             "rsttrace_block drop_out { type filter hook output priority 0; }; "
             "add rule inet rsttrace_block drop_out %s drop" % match)


def _unblock(pair, side):
    pair.nft(side, "delete table inet rsttrace_block")


def _block_input(pair, side, match="tcp dport 1-65535"):
    pair.nft(side, "add table inet rsttrace_in; "
             "add chain inet rsttrace_in drop_in { type filter hook input "
             "priority 0; }; add rule inet rsttrace_in drop_in %s drop"
             % match)


def _unblock_input(pair, side):
    pair.nft(side, "delete table inet rsttrace_in")


def _stuffed(pair):
    """A connection whose client has data it cannot send: the server reads
    nothing and its small receive buffer closes the window."""
    cli, srv = provoke._connected(pair, 4)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    cli.setblocking(False)
    try:
        while True:
            cli.send(b"x" * 65536)
    except BlockingIOError:
        pass
    return cli, srv


def _linger0(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))


def _expect_error(sock, fn):
    try:
        fn()
    except OSError as e:
        return e.strerror
    return None


# -- the catalogue -----------------------------------------------------------

@scenario("no-listener", "SYN to a port nothing listens on", ["000", "002",
                                                                "003", "004"],
          [("b", "sent", "no-listener"), ("a", "received", "reset-received")])
def _no_listener(pair):
    return provoke.closed_port(pair, 4).error


@scenario("no-listener-ipv6", "the same over IPv6", ["000"],
          [("b", "sent", "no-listener"), ("a", "received", "reset-received")])
def _no_listener6(pair):
    return provoke.closed_port(pair, 6).error


@scenario("linger-zero", "close() with SO_LINGER {1, 0} (nginx "
          "reset_timedout_connection)", ["000", "002", "004"],
          [("a", "sent", "linger-zero-close"),
           ("b", "received", "reset-received")])
def _linger_zero(pair):
    return provoke.linger_zero(pair, 4).error


@scenario("linger-zero-unsent", "SO_LINGER {1, 0} close with data still "
          "unsent (the peer's window is closed)", ["004"],
          [("a", "sent", "linger-zero-close"),
           ("b", "received", "reset-received")],
          # The RST carries snd_nxt, past what b has received: b may answer
          # with a challenge ACK (RFC 5961), which a (no socket now) resets.
          allow=[("b", "challenge_ack", "challenge-ack"),
                 ("a", "sent", "no-connection")])
def _linger_zero_unsent(pair):
    cli, srv = _stuffed(pair)
    _linger0(cli)
    cli.close()
    return provoke._recv_error(srv)


@scenario("linger-zero-unacked", "SO_LINGER {1, 0} close with data sent "
          "but not yet acknowledged", ["004"],
          [("a", "sent", "linger-zero-close"),
           ("b", "received", "reset-received")],
          # tcp_close -> tcp_disconnect counts the abort
          counters={"a": {"TcpExt:TCPAbortOnData": 1}})
def _linger_zero_unacked(pair):
    cli, srv = provoke._connected(pair, 4)
    _block_input(pair, "a")             # b's ACKs never reach a
    cli.send(b"y" * 1000)
    provoke._wait_readable(srv)
    srv.recv(1000)                      # b has it all; a waits for the ACK
    _linger0(cli)
    cli.close()
    _unblock_input(pair, "a")
    return provoke._recv_error(srv)


@scenario("linger-timeout-queued", "SO_LINGER {1, 1} close with data still "
          "queued when the linger time runs out: close() returns, no RST",
          ["004"], [],
          kernel_note="when SO_LINGER's time runs out, __tcp_close "
          "(sk_stream_wait_close) just returns: the socket is orphaned in "
          "FIN_WAIT1 with its queue and keeps probing the peer's zero "
          "window. No RST, unlike SO_LINGER {1, 0}; only an orphan or memory "
          "limit (tcp_check_oom, tcp_out_of_resources) would reset it later.",
          counters={"a": {"TcpExt:TCPAbortOnData": 0,
                          "TcpExt:TCPAbortOnClose": 0,
                          "TcpExt:TCPAbortOnMemory": 0}})
def _linger_timeout_queued(pair):
    cli, srv = _stuffed(pair)
    cli.setblocking(True)
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                   struct.pack("ii", 1, 1))
    start = time.monotonic()
    cli.close()
    took = time.monotonic() - start
    left = pair.run("a", "ss", "-tnH", "state", "fin-wait-1").strip()
    return "close() returned after %.1f s; %s" % (
        took, "the socket is left in FIN-WAIT-1" if left else
        "no FIN-WAIT-1 socket left")


@scenario("unread-data-close", "close() with unread data in the receive "
          "queue", ["000", "002", "004"],
          [("a", "sent", "unread-data-close"),
           ("b", "received", "reset-received")])
def _unread(pair):
    return provoke.unread_data_close(pair, 4).error


@scenario("data-after-close", "the peer writes after this side closed "
          "(write after peer closed)", ["000", "004"],
          [("a", "sent", "data-after-close"),
           ("b", "received", "reset-received")],
          allow=[("a", "received", "data-after-close")])
def _data_after_close(pair):
    cli, srv = provoke._connected(pair, 4)
    cli.close()                         # FIN; a is FIN_WAIT2, then orphan
    time.sleep(0.1)
    srv.send(b"late data")              # arrives at a closed socket
    return provoke._recv_error(srv)


@scenario("half-open", "the server forgot the connection (crash, restart) "
          "and the client sends data", ["000", "002"],
          [("b", "sent", "no-connection"),
           ("a", "received", "reset-received")],
          # how the server is made to forget: an abort whose RST is dropped
          allow=[("b", "sent", "linger-zero-close")])
def _half_open(pair):
    cli, srv = provoke._connected(pair, 4)
    _block_output(pair, "b")            # b's abort never reaches a
    _linger0(srv)
    srv.close()
    _unblock(pair, "b")
    cli.send(b"request")
    return provoke._recv_error(cli)


@scenario("close-after-connect", "the client closes right after connect; "
          "the SYN-ACK finds no socket", ["002"],
          [("a", "sent", "no-connection")])
def _close_after_connect(pair):
    lst, port = _listener(pair)
    _block_output(pair, "b")            # hold the SYN-ACK back
    cli = pair.socket("a")
    cli.setblocking(False)
    cli.connect_ex((pair.ipv4["b"], port))
    cli.close()                         # SYN_SENT: closes without an RST
    _unblock(pair, "b")                 # the retransmitted SYN-ACK arrives
    time.sleep(1.6)
    return None


@scenario("accept-overflow-abort", "accept queue full with "
          "tcp_abort_on_overflow=1", ["002"],
          [("b", "sent", "accept-queue-overflow"),
           ("a", "received", "reset-received")],
          # tcp_v4_syn_recv_sock counts the overflow; tcp_check_req's
          # embryonic_reset path sends the RST and counts it
          counters={"b": {"TcpExt:ListenOverflows": ">=1",
                          "TcpExt:EmbryonicRsts": 1}})
def _accept_overflow(pair):
    return _overflow(pair, abort=1)


@scenario("accept-overflow-no-abort", "accept queue full with "
          "tcp_abort_on_overflow=0: the final ACK is dropped, no RST", ["002"],
          [],
          # b retransmits its SYN-ACK; the established client answers that
          # SYN with a challenge ACK
          allow=[("a", "challenge_ack", "challenge-ack")],
          counters={"b": {"TcpExt:ListenOverflows": ">=1",
                          "TcpExt:EmbryonicRsts": 0}})
def _accept_overflow_no_abort(pair):
    return _overflow(pair, abort=0)


@scenario("accept-overflow-sequential", "the article's reproduction: "
          "clients connect one after another to a listen(2) that never "
          "accepts, tcp_abort_on_overflow=1: no RST since Linux 4.10",
          ["002"], [],
          counters={"b": {"TcpExt:ListenOverflows": ">=1",
                          "TcpExt:EmbryonicRsts": 0}},
          kernel_note="article 002 found that tcp_abort_on_overflow=1 "
          "resets on 3.10 (CentOS 7) but not on 5.10 and concluded the "
          "setting is dead. It is not: the reset itself is unchanged "
          "(tcp_check_req -> tcp_v4_send_reset, counted as EmbryonicRsts; "
          "accept-overflow-abort shows it on every kernel here). What "
          "changed is when a SYN is dropped. 3.10's tcp_v4_conn_request "
          "dropped a SYN at a full accept queue only while more than one "
          "young request was pending (`sk_acceptq_is_full(sk) && "
          "inet_csk_reqsk_queue_young(sk) > 1`), so clients connecting one "
          "at a time completed handshakes into the full queue and their "
          "final ACK was reset. Since Linux 4.10 (commit 5ea8ea2cb7f1, "
          "\"tcp/dccp: drop SYN packets if accept queue is full\"; also "
          "backported to stable series such as 3.16.81) tcp_conn_request "
          "drops every SYN that meets a full queue (counted as "
          "ListenOverflows and ListenDrops): no handshake completes, "
          "the client retries its SYN, and no RST is ever sent. "
          "An overflow RST now needs handshakes already under way when the "
          "queue fills, as in accept-overflow-abort.")
def _accept_overflow_sequential(pair):
    pair.sysctl("b", "net.ipv4.tcp_abort_on_overflow", 1)
    lst, port = _listener(pair, backlog=2)
    states = []
    for _ in range(5):
        c = pair.socket("a")
        c.setblocking(False)
        c.connect_ex((pair.ipv4["b"], port))
        _, writable, _ = select.select([], [c], [], 0.5)
        states.append("connected" if writable and not c.getsockopt(
            socket.SOL_SOCKET, socket.SO_ERROR) else "SYN unanswered")
    return "clients: " + ", ".join(states)


def _overflow(pair, abort):
    """Two handshakes reach their final ACK at a listener whose accept
    queue holds one, and which never accepts. Deterministic: the SYNs meet
    an open queue (a SYN meeting a full queue, or a full request queue, is
    dropped or answered with a syncookie, which never resets), the clients'
    final ACKs are held back, then the backlog is cut to 0 with a second
    listen(), and the ACKs are let through: the second meets a full queue."""
    pair.sysctl("b", "net.ipv4.tcp_abort_on_overflow", abort)
    lst, port = _listener(pair, backlog=8)
    _block_output(pair, "a", "tcp flags & (syn|ack) == ack")
    clients = []
    for _ in range(2):
        c = pair.socket("a")
        c.setblocking(False)
        c.connect_ex((pair.ipv4["b"], port))
        clients.append(c)
    time.sleep(0.2)
    lst.listen(0)                       # accept queue: room for one
    _unblock(pair, "a")
    for c in clients:                   # data carries the final ACK
        c.send(b"hello")
        time.sleep(0.1)
    errors = []
    for c in clients:
        try:
            c.setblocking(True)
            c.settimeout(0.5)
            c.recv(10)
        except OSError as e:
            errors.append(e.strerror or "timeout")
    return "; ".join(e for e in errors if e)


@scenario("listener-closed", "a listener closes with connections queued, "
          "never accepted", ["002"],
          [("b", "sent", "listener-closed"),
           ("a", "received", "reset-received")])
def _listener_closed(pair):
    lst, port = _listener(pair)
    cli = pair.socket("a")
    cli.settimeout(5)
    cli.connect((pair.ipv4["b"], port))
    time.sleep(0.05)
    lst.close()
    return provoke._recv_error(cli)


@scenario("time-wait-assassination", "a late segment hits the client's "
          "TIME_WAIT; its ACK reaches a server that has closed", ["002"],
          [("b", "sent", "no-connection")])
def _tw_assassination(pair):
    cli, srv = provoke._connected(pair, 4)
    cport, sport = cli.getsockname()[1], srv.getsockname()[1]
    cli.shutdown(socket.SHUT_WR)        # the client closes first
    provoke._recv_error(srv)
    srv.close()                         # server: LAST_ACK -> CLOSED
    time.sleep(0.1)
    cli.close()                         # client: TIME_WAIT
    # A late, old segment from the server: TIME_WAIT answers with an ACK,
    # which the server (no socket now) resets.
    craft.send_segment(pair, "b", "a", sport, cport, seq=1, ack=1,
                       flags=ACK, payload=b"old")
    return None


@scenario("nat-expired", "the NAT mapping of an idle connection expired: "
          "the server's next segment finds no translation back and meets "
          "no socket", ["002"],
          [("a", "sent", "no-connection"),
           ("b", "received", "reset-received")])
def _nat_expired(pair):
    """a's connection to b leaves through SNAT (to an alias address of a);
    conntrack forgets it after 1 s idle; b's next segment to the alias is
    no longer translated back and reaches no socket."""
    alias = "198.18.%d.3" % pair.subnet
    pair.run("a", "ip", "addr", "add", alias + "/24", "dev", pair.veth["a"])
    pair.nft("a", "add table ip rsttrace_nat; add chain ip rsttrace_nat post "
             "{ type nat hook postrouting priority 100; }; add rule ip "
             "rsttrace_nat post ip daddr %s snat to %s"
             % (pair.ipv4["b"], alias))
    cli, srv = provoke._connected(pair, 4)
    pair.sysctl("a", "net.netfilter.nf_conntrack_tcp_timeout_established", 1)
    cli.send(b"x")
    srv.recv(1)
    time.sleep(2.5)                     # the conntrack entry expires
    srv.send(b"late reply")
    return provoke._recv_error(srv)


@scenario("keepalive-timeout", "keepalive probes to a peer that went "
          "silent", ["004"],
          [("a", "sent", "keepalive-timeout")])
def _keepalive(pair):
    cli, srv = provoke._connected(pair, 4)
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 1)
    _block_input(pair, "b")             # the peer vanishes
    return provoke._recv_error(cli)


@scenario("keepalive-vanished-peer", "a keepalive probe reaches a peer "
          "whose socket is gone (past its FIN_WAIT timeout)", ["004"],
          [("b", "sent", "no-connection"),
           ("a", "received", "reset-received")],
          # how b is made to forget: an abort whose RST is dropped
          allow=[("b", "sent", "linger-zero-close")])
def _keepalive_vanished(pair):
    cli, srv = provoke._connected(pair, 4)
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    _block_output(pair, "b")
    _linger0(srv)
    srv.close()
    _unblock(pair, "b")
    return provoke._recv_error(cli)   # the probe's answer is an RST


@scenario("bad-checksum", "a SYN with a bad TCP checksum to a closed port "
          "is dropped before any RST", ["003"], [])
def _bad_checksum(pair):
    port = provoke._free_port(pair, "b", 4)
    seg = bytearray(craft.tcp_segment(pair.ipv4["a"], pair.ipv4["b"], 40001,
                                      port, seq=1, ack=0, flags=SYN))
    seg[16] ^= 0xFF                     # corrupt the checksum
    raw = pair.socket("a", socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_TCP)
    raw.sendto(bytes(seg), (pair.ipv4["b"], 0))
    raw.close()
    time.sleep(0.05)
    errors = pair.run("b", "nstat", "-az", "TcpInCsumErrors").split()
    return "TcpInCsumErrors %s" % errors[errors.index("TcpInCsumErrors") + 1]


@scenario("linger2-negative", "TCP_LINGER2 < 0: close() in FIN_WAIT2 "
          "aborts instead of waiting", ["004"],
          [("a", "sent", "fin-wait2-timeout"),
           ("b", "received", "reset-received")])
def _linger2(pair):
    cli, srv = provoke._connected(pair, 4)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_LINGER2, -1)
    cli.shutdown(socket.SHUT_WR)        # FIN, ACKed: FIN_WAIT2
    time.sleep(0.1)
    cli.close()
    return provoke._recv_error(srv)


MAX_ORPHANS = "/proc/sys/net/ipv4/tcp_max_orphans"


def _orphans(pair, n):
    """n orphaned sockets on side a: connections closed while b drops
    their FINs, left retransmitting in FIN_WAIT1."""
    lst, port = _listener(pair, "b", backlog=n)
    clients = []
    for _ in range(n):
        clients.append(pair.socket("a", socket.AF_INET))
        clients[-1].connect((pair.ipv4["b"], port))
        srv, _ = lst.accept()
        pair._sockets.append(srv)       # closed with the pair, not here
    lst.close()
    _block_input(pair, "b", "tcp dport %d" % port)
    for cli in clients:
        cli.close()


@scenario("memory-pressure", "closing a connection while the host has more "
          "orphaned sockets than net.ipv4.tcp_max_orphans allows: the kernel "
          "aborts it with an RST instead of a FIN handshake", [],
          [("a", "sent", "memory-pressure"),
           ("b", "received", "reset-received")],
          # __tcp_close sent its FIN just before the RST: b's ACK of that
          # FIN may reach a when the socket is gone (seen on 5.10)
          allow=[("a", "sent", "no-connection")],
          counters={"a": {"TcpExt:TCPAbortOnMemory": ">=1"}},
          host_wide="net.ipv4.tcp_max_orphans",
          kernel_note="__tcp_close() orphans the socket, then "
          "tcp_check_oom() compares the host's orphan count with "
          "tcp_max_orphans (and TCP memory with tcp_mem) and aborts with an "
          "RST in state CLOSE (reason TCP_ABORT_ON_MEMORY since 6.10). The "
          "count it reads lags: before 5.16 a percpu_counter whose quick read "
          "misses up to 32 orphans per CPU, since then a cache refreshed "
          "every 100 ms (tcp_orphan_update); so the scenario makes 64 "
          "orphans first and waits a moment.")
def _memory_pressure(pair):
    # tcp_max_orphans exists only in the initial network namespace and
    # counts the orphans of every namespace.
    _orphans(pair, 64)
    time.sleep(0.3)
    cli, srv = provoke._connected(pair, 4)
    with open(MAX_ORPHANS) as f:
        old = f.read().strip()
    try:
        with open(MAX_ORPHANS, "w") as f:
            f.write("0")
        cli.close()
    finally:
        with open(MAX_ORPHANS, "w") as f:
            f.write(old)
    return "tcp_max_orphans 0 for the close, %s again" % old


@scenario("socket-killed", "an administrator kills the socket (ss -K)",
          [], [("a", "sent", "socket-killed"),
               ("b", "received", "reset-received")])
def _killed(pair):
    cli, srv = provoke._connected(pair, 4)
    pair.run("a", "ss", "-K", "dst", pair.ipv4["b"])
    return provoke._recv_error(srv)


@scenario("firewall-reject", "netfilter REJECT --reject-with tcp-reset "
          "(nft)", ["002"],
          [("b", "sent", "firewall-reject"),
           ("a", "received", "reset-received")], needs=["packets"])
def _firewall(pair):
    return _reject(pair, 4)


@scenario("firewall-reject-ipv6", "the same for IPv6 (nft inet table)",
          ["002"],
          [("b", "sent", "firewall-reject"),
           ("a", "received", "reset-received")], needs=["packets"])
def _firewall6(pair):
    return _reject(pair, 6)


def _reject(pair, family):
    fam = provoke.FAMILIES[family]
    lst, port = _listener(pair, family=fam)
    pair.nft("b", "add table inet rsttrace_fw; add chain inet rsttrace_fw "
             "reject_in { type filter hook input priority 0; }; add rule "
             "inet rsttrace_fw reject_in tcp dport %d reject with tcp reset"
             % port)
    cli = pair.socket("a", fam)
    cli.settimeout(5)
    return _expect_error(cli, lambda: cli.connect((pair.addr("b", fam),
                                                   port)))


@scenario("syn-existing-5tuple", "a SYN on the 4-tuple of a connection the "
          "server still has: challenge ACK, the client's RST, then a new "
          "connection", ["002", "003"],
          [("b", "challenge_ack", "challenge-ack"),
           ("a", "sent", "invalid-ack"),
           ("b", "received", "reset-received")],
          # how the client is made to forget: an abort whose RST is dropped
          allow=[("a", "sent", "linger-zero-close")], needs=["challenge_ack"])
def _syn_existing(pair):
    cli, srv = provoke._connected(pair, 4, keep_listener=True)
    cport = cli.getsockname()[1]
    port = srv.getsockname()[1]
    _block_output(pair, "a")            # the client forgets silently
    _linger0(cli)
    cli.close()
    _unblock(pair, "a")
    again = pair.socket("a")
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind((pair.ipv4["a"], cport))
    again.settimeout(5)
    err = _expect_error(again, lambda: again.connect((pair.ipv4["b"], port)))
    return err or "reconnected"


def _established_seq(pair):
    cli, srv = provoke._connected(pair, 4)
    cli.send(b"x")
    srv.recv(1)
    time.sleep(0.05)
    b_snd, b_rcv = craft.sequence_numbers(srv)
    return cli, srv, b_snd, b_rcv


@scenario("challenge-ack-rst", "an in-window RST with the wrong sequence "
          "number gets a challenge ACK (RFC 5961)", ["003"],
          [("b", "challenge_ack", "challenge-ack")], needs=["challenge_ack"])
def _challenge_rst(pair):
    cli, srv, b_snd, b_rcv = _established_seq(pair)
    craft.send_segment(pair, "a", "b", cli.getsockname()[1],
                       srv.getsockname()[1], seq=b_rcv + 100, ack=0,
                       flags=RST)
    time.sleep(0.05)
    srv.send(b"still alive")
    return "connection survives: %r" % cli.recv(20)


@scenario("challenge-ack-syn", "a SYN inside an established connection gets "
          "a challenge ACK (RFC 5961)", ["003"],
          [("b", "challenge_ack", "challenge-ack")],
          allow=[("a", "sent", "invalid-ack"),
                 ("b", "received", "reset-received")],
          needs=["challenge_ack"])
def _challenge_syn(pair):
    cli, srv, b_snd, b_rcv = _established_seq(pair)
    craft.send_segment(pair, "a", "b", cli.getsockname()[1],
                       srv.getsockname()[1], seq=b_rcv + 10, ack=0,
                       flags=SYN)
    time.sleep(0.05)
    return None


@scenario("out-of-window-rst", "an RST outside the receive window is "
          "dropped silently (tcp_validate_incoming)", ["003"], [])
def _oow_rst(pair):
    cli, srv, b_snd, b_rcv = _established_seq(pair)
    craft.send_segment(pair, "a", "b", cli.getsockname()[1],
                       srv.getsockname()[1], seq=b_rcv + (1 << 30), ack=0,
                       flags=RST)
    time.sleep(0.05)
    srv.send(b"still alive")
    return "connection survives: %r" % cli.recv(20)


@scenario("exact-rst", "an RST with exactly the expected sequence number "
          "closes the connection", ["003"],
          [("b", "received", "reset-received")])
def _exact_rst(pair):
    cli, srv, b_snd, b_rcv = _established_seq(pair)
    craft.send_segment(pair, "a", "b", cli.getsockname()[1],
                       srv.getsockname()[1], seq=b_rcv, ack=0, flags=RST)
    return provoke._recv_error(srv)


def by_name(names):
    known = {s.name: s for s in CATALOGUE}
    unknown = [n for n in names if n not in known]
    if unknown:
        from .errors import UsageError
        raise UsageError("no scenario called %s" % ", ".join(unknown),
                         "see `rsttrace scenarios list`")
    return [known[n] for n in names] if names else list(CATALOGUE)

