"""The listener's accept queue: overflow with and without
tcp_abort_on_overflow, a listener closed with connections queued."""

import select
import socket
import time

from rsttrace.lab import craft, traffic
from rsttrace.lab.catalogue.registry import scenario


@scenario("accept-overflow-abort", "accept queue full with "
          "tcp_abort_on_overflow=1", ["002"],
          # tcp_v4_syn_recv_sock counts the overflow; tcp_check_req's
          # embryonic_reset path sends the RST and counts it
          counters={"b": {"TcpExt:ListenOverflows": ">=1",
                          "TcpExt:EmbryonicRsts": 1}})
def _accept_overflow(pair):
    return _overflow(pair, abort=1)


@scenario("accept-overflow-no-abort", "accept queue full with "
          "tcp_abort_on_overflow=0: the final ACK is dropped, no RST", ["002"],
          counters={"b": {"TcpExt:ListenOverflows": ">=1",
                          "TcpExt:EmbryonicRsts": 0}})
def _accept_overflow_no_abort(pair):
    return _overflow(pair, abort=0)


@scenario("accept-overflow-sequential", "the article's reproduction: "
          "clients connect one after another to a listen(2) that never "
          "accepts, tcp_abort_on_overflow=1: no RST since Linux 4.10",
          ["002"],
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
    lst, port = traffic.listener(pair, backlog=2)
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
    """traffic.overflow at a listener that never accepts."""
    pair.sysctl("b", "net.ipv4.tcp_abort_on_overflow", abort)
    lst, port = traffic.listener(pair, backlog=8)
    clients = traffic.overflow(pair, port, lambda: lst.listen(0))
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
          "never accepted", ["002"])
def _listener_closed(pair):
    lst, port = traffic.listener(pair)
    cli = pair.socket("a")
    cli.settimeout(5)
    cli.connect((pair.ipv4["b"], port))
    time.sleep(0.05)
    lst.close()
    return traffic.recv_error(cli)


@scenario("icmp-dropped-request", "an ICMP host unreachable about the "
          "server's SYN-ACK makes it drop the half-open connection; the "
          "client's next segment meets the listener", [],
          # tcp_v4_err -> tcp_req_err: the request dropped and counted
          counters={"b": {"TcpExt:ListenDrops": 1}})
def _icmp_dropped_request(pair):
    lst, port = traffic.listener(pair)
    # the client's handshake ACK never leaves: b keeps a request (SYN_RECV)
    traffic.block_output(pair, "a", "tcp dport %d tcp flags == ack" % port)
    cli = pair.socket("a")
    cli.settimeout(5)
    cli.connect((pair.ipv4["b"], port))         # ESTABLISHED on a's side
    _, rcv_nxt = craft.sequence_numbers(cli)    # b's ISN + 1
    craft.send_host_unreachable(pair, "a", "b", port, cli.getsockname()[1],
                                rcv_nxt - 1)
    traffic.settle(0.1)
    traffic.unblock(pair, "a")
    cli.send(b"request")
    return traffic.recv_error(cli)
