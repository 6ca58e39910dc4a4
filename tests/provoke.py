"""Every cause that exists on both IPv4 and IPv6, provoked over either
family for the per-event tests (tests/integration/test_trace_events.py),
with the events each must make the kernels report, stated here.

A case is fn(pair, family) -> (client end, server end) of the connection,
each (address, port); the events it must produce are Want()s: which side
reports it, kind, cause, socket state, the RST function on the stack, the
kernel's reason from 6.10 on, and whether it is an RST sent without a full
socket (which the tcp tracepoint misses before 6.10). `optional` events
may or may not happen (timing), and are then checked all the same.
"""

import socket
import time

from rsttrace.lab import craft, traffic
from rsttrace.lab.traffic import FAMILIES


class Want:
    def __init__(self, side, kind, cause, state, emitter, reason=None,
                 socketless=False, optional=False, function_hook=None):
        self.side, self.kind, self.cause = side, kind, cause
        self.state, self.emitter, self.reason = state, emitter, reason
        self.socketless = socketless
        self.optional = optional
        # the kernel function whose hook reports it, seen only where
        # rsttrace hooks functions (kprobe, fentry): tracepoint mode has no
        # such tracepoint (it sees these only with --packets)
        self.function_hook = function_hook

    def __repr__(self):
        return "Want(%s %s %s)" % (self.side, self.kind, self.cause)


def send_fn(family):
    return "tcp_v%d_send_reset" % family


def _ends(cli):
    return cli.getsockname()[:2], cli.getpeername()[:2]


def closed_port(pair, family):
    p = traffic.closed_port(pair, family)
    return (p.daddr, p.dport), (p.saddr, p.sport)


def _on_connection(pair, family, act, reader="srv"):
    """A connection from a to b; act(cli, srv) makes the RST; then
    `reader` reads until it sees the end. Returns its two ends."""
    cli, srv = traffic.connected(pair, family)
    ends = _ends(cli)
    act(cli, srv)
    traffic.recv_error(srv if reader == "srv" else cli)
    return ends


def half_open(pair, family):
    def forget_then_send(cli, srv):
        traffic.block_output(pair, "b")     # b's abort never reaches a
        traffic.linger0(srv)
        srv.close()
        traffic.unblock(pair, "b")
        cli.send(b"request")
    return _on_connection(pair, family, forget_then_send, reader="cli")


def linger_zero(pair, family):
    p = traffic.linger_zero(pair, family)
    return (p.saddr, p.sport), (p.daddr, p.dport)


def unread_data(pair, family):
    p = traffic.unread_data_close(pair, family)
    return (p.saddr, p.sport), (p.daddr, p.dport)


def data_after_close(pair, family):
    def close_then_late_data(cli, srv):
        cli.close()
        time.sleep(0.1)
        srv.send(b"late data")
    return _on_connection(pair, family, close_then_late_data)


def linger2_negative(pair, family):
    def shutdown_then_close(cli, srv):
        cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_LINGER2, -1)
        cli.shutdown(socket.SHUT_WR)
        time.sleep(0.1)
        cli.close()
    return _on_connection(pair, family, shutdown_then_close)


def socket_killed(pair, family):
    peer = "[%s]" % pair.addr("b", FAMILIES[family])
    return _on_connection(pair, family, lambda cli, srv: pair.run(
        "a", "ss", "-K", "dst", peer))


def listener_closed(pair, family):
    fam = FAMILIES[family]
    lst, port = traffic.listener(pair, family=fam)
    cli = pair.socket("a", fam)
    cli.settimeout(5)
    cli.connect((pair.addr("b", fam), port))
    ends = _ends(cli)
    time.sleep(0.05)
    lst.close()
    traffic.recv_error(cli)
    return ends


def keepalive_timeout(pair, family):
    def peer_vanishes(cli, srv):
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 1)
        traffic.block_input(pair, "b")
    try:
        return _on_connection(pair, family, peer_vanishes, reader="cli")
    finally:
        traffic.unblock_input(pair, "b")


def accept_overflow(pair, family):
    """Two handshakes reach their final ACK at a listener whose accept
    queue holds one, with tcp_abort_on_overflow=1: the second is reset
    (as the catalogue's accept-overflow-abort, over either family)."""
    fam = FAMILIES[family]
    pair.sysctl("b", "net.ipv4.tcp_abort_on_overflow", 1)
    lst, port = traffic.listener(pair, family=fam, backlog=8)
    traffic.block_output(pair, "a", "tcp flags & (syn|ack) == ack")
    clients = []
    for _ in range(2):
        c = pair.socket("a", fam)
        c.setblocking(False)
        c.connect_ex((pair.addr("b", fam), port))
        clients.append(c)
    time.sleep(0.2)
    ends = [_ends(c) for c in clients]  # established on a's side
    lst.listen(0)                       # accept queue: room for one
    traffic.unblock(pair, "a")
    for c in clients:                   # data carries the final ACK
        c.send(b"hello")
        time.sleep(0.1)
    reset = []
    for c, e in zip(clients, ends):
        c.setblocking(True)
        c.settimeout(0.5)
        try:
            c.recv(10)
        except ConnectionResetError:
            reset.append(e)
        except OSError:
            pass
    assert len(reset) == 1, reset       # one fitted, one was reset
    return reset[0]


def lone_ack(pair, family):
    """An ACK to a listener with no matching request (raw socket)."""
    fam = FAMILIES[family]
    lst, port = traffic.listener(pair, family=fam, backlog=7)
    craft.send_segment(pair, "a", "b", 40000, port, seq=1000, ack=2000,
                       flags=craft.ACK, family=family)
    time.sleep(0.05)
    lst.close()
    return (pair.addr("a", fam), 40000), (pair.addr("b", fam), port)


def challenge_rst(pair, family):
    """An in-window RST with the wrong sequence number (RFC 5961)."""
    cli, srv = traffic.connected(pair, family)
    cli.send(b"x")
    srv.recv(1)
    time.sleep(0.05)
    _, b_rcv = craft.sequence_numbers(srv)
    ends = _ends(cli)
    craft.send_segment(pair, "a", "b", ends[0][1], ends[1][1],
                       seq=b_rcv + 100, ack=0, flags=craft.RST,
                       family=family)
    time.sleep(0.05)
    srv.send(b"still alive")
    assert cli.recv(20) == b"still alive"
    return ends


def time_wait_assassination(pair, family):
    cli, srv = traffic.connected(pair, family)
    ends = _ends(cli)
    cli.shutdown(socket.SHUT_WR)
    traffic.recv_error(srv)
    srv.close()
    time.sleep(0.1)
    cli.close()                         # client: TIME_WAIT
    craft.send_segment(pair, "b", "a", ends[1][1], ends[0][1], seq=1,
                       ack=1, flags=craft.ACK, payload=b"old",
                       family=family)
    return ends


def received(state, optional=False):
    return Want("b" if state != "SYN_SENT" else "a", "received",
                "reset-received", state, "tcp_reset", optional=optional)


def cases(family):
    """{name: (fn, [Want])} for one family."""
    reply = send_fn(family)
    return {
        "closed-port": (closed_port, [
            Want("b", "sent", "no-listener", None, reply, "NO_SOCKET",
                 socketless=True),
            Want("a", "received", "reset-received", "SYN_SENT",
                 "tcp_reset")]),
        "half-open": (half_open, [
            # how b is made to forget: an abort whose RST nft drops
            Want("b", "sent", "linger-zero-close", "CLOSE",
                 "tcp_send_active_reset", "TCP_STATE"),
            Want("b", "sent", "no-connection", None, reply, "NO_SOCKET",
                 socketless=True),
            Want("a", "received", "reset-received", "ESTABLISHED",
                 "tcp_reset")]),
        "linger-zero": (linger_zero, [
            Want("a", "sent", "linger-zero-close", "CLOSE",
                 "tcp_send_active_reset", "TCP_STATE"),
            received("ESTABLISHED")]),
        "unread-data": (unread_data, [
            Want("a", "sent", "unread-data-close", "CLOSE",
                 "tcp_send_active_reset", "TCP_ABORT_ON_CLOSE"),
            received("ESTABLISHED")]),
        "data-after-close": (data_after_close, [
            Want("a", "sent", "data-after-close", "TIME_WAIT", reply,
                 "TCP_TIMEWAIT_SOCKET", socketless=True),
            # where the data meets the closed socket itself, the kernel
            # calls tcp_reset() on it (no RST was received)
            Want("a", "received", "data-after-close", "FIN_WAIT2",
                 "tcp_reset", optional=True),
            received("CLOSE_WAIT")]),
        "linger2-negative": (linger2_negative, [
            Want("a", "sent", "fin-wait2-timeout", "CLOSE",
                 "tcp_send_active_reset", "TCP_ABORT_ON_LINGER"),
            received("CLOSE_WAIT")]),
        "socket-killed": (socket_killed, [
            Want("a", "sent", "socket-killed", "ESTABLISHED",
                 "tcp_send_active_reset", "TCP_STATE"),
            received("ESTABLISHED")]),
        "listener-closed": (listener_closed, [
            Want("b", "sent", "listener-closed", "CLOSE",
                 "tcp_send_active_reset", "TCP_STATE"),
            Want("a", "received", "reset-received", "ESTABLISHED",
                 "tcp_reset")]),
        "keepalive-timeout": (keepalive_timeout, [
            # b's input is blocked: it never receives the RST
            Want("a", "sent", "keepalive-timeout", "ESTABLISHED",
                 "tcp_send_active_reset", "TCP_KEEPALIVE_TIMEOUT")]),
        "accept-overflow": (accept_overflow, [
            Want("b", "sent", "accept-queue-overflow", "LISTEN", reply,
                 "INVALID_SYN"),
            Want("a", "received", "reset-received", "ESTABLISHED",
                 "tcp_reset")]),
        "lone-ack": (lone_ack, [
            Want("b", "sent", "no-connection", "LISTEN", reply,
                 "TCP_FLAGS")]),
        "challenge-rst": (challenge_rst, [
            Want("b", "challenge_ack", "challenge-ack", "ESTABLISHED",
                 "tcp_send_challenge_ack")]),
        "time-wait-assassination": (time_wait_assassination, [
            Want("b", "sent", "no-connection", None, reply, "NO_SOCKET",
                 socketless=True),
            # b's RST carries the sequence number a's TIME_WAIT expects:
            # tcp_timewait_state_process kills it (tcp_rfc1337=0)
            # (no RST function on its stack: the socket is killed, no RST
            # sent or processed as one)
            Want("a", "received", "time-wait-assassination", "TIME_WAIT",
                 None, function_hook="inet_twsk_deschedule_put")]),
    }
