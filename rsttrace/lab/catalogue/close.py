"""How the application closes: SO_LINGER, unread data, data after close,
TCP_LINGER2, a socket killed from outside."""

import socket
import struct
import time

from rsttrace.lab import traffic
from rsttrace.lab.catalogue.registry import scenario


@scenario("linger-zero", "close() with SO_LINGER {1, 0} (nginx "
          "reset_timedout_connection)", ["000", "002", "004"])
def _linger_zero(pair):
    return traffic.linger_zero(pair, 4).error


@scenario("linger-zero-unsent", "SO_LINGER {1, 0} close with data still "
          "unsent (the peer's window is closed)", ["004"])
def _linger_zero_unsent(pair):
    cli, srv = traffic.stuffed(pair)
    traffic.linger0(cli)
    cli.close()
    return traffic.recv_error(srv)


@scenario("linger-zero-unacked", "SO_LINGER {1, 0} close with data sent "
          "but not yet acknowledged", ["004"],
          # tcp_close -> tcp_disconnect counts the abort
          counters={"a": {"TcpExt:TCPAbortOnData": 1}})
def _linger_zero_unacked(pair):
    cli, srv = traffic.connected(pair, 4)
    traffic.block_input(pair, "a")             # b's ACKs never reach a
    cli.send(b"y" * 1000)
    traffic.wait_readable(srv)
    srv.recv(1000)                      # b has it all; a waits for the ACK
    traffic.linger0(cli)
    cli.close()
    traffic.unblock_input(pair, "a")
    return traffic.recv_error(srv)


@scenario("linger-timeout-queued", "SO_LINGER {1, 1} close with data still "
          "queued when the linger time runs out: close() returns, no RST",
          ["004"],
          kernel_note="when SO_LINGER's time runs out, __tcp_close "
          "(sk_stream_wait_close) just returns: the socket is orphaned in "
          "FIN_WAIT1 with its queue and keeps probing the peer's zero "
          "window. No RST, unlike SO_LINGER {1, 0}; only an orphan or memory "
          "limit (tcp_check_oom, tcp_out_of_resources) would reset it later.",
          counters={"a": {"TcpExt:TCPAbortOnData": 0,
                          "TcpExt:TCPAbortOnClose": 0,
                          "TcpExt:TCPAbortOnMemory": 0}})
def _linger_timeout_queued(pair):
    cli, srv = traffic.stuffed(pair)
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
          "queue", ["000", "002", "004"])
def _unread(pair):
    return traffic.unread_data_close(pair, 4).error


@scenario("data-after-close", "the peer writes after this side closed "
          "(write after peer closed)", ["000", "004"])
def _data_after_close(pair):
    cli, srv = traffic.connected(pair, 4)
    cli.close()                         # FIN; a is FIN_WAIT2, then orphan
    time.sleep(0.1)
    srv.send(b"late data")              # arrives at a closed socket
    return traffic.recv_error(srv)


@scenario("data-after-shutdown", "the peer writes after this side shut "
          "down both directions (shutdown(SHUT_RDWR), no close): the kernel "
          "aborts the socket itself, and no RST arrives", [],
          # tcp_rcv_state_process, FIN_WAIT2 with RCV_SHUTDOWN: tcp_reset()
          counters={"a": {"TcpExt:TCPAbortOnData": 1}},
          kernel_note="data after the reading side was shut down (close(), "
          "or shutdown(SHUT_RD) as here) meets RFC 1122's MUST reset: "
          "tcp_rcv_state_process() counts TCPAbortOnData and calls "
          "tcp_reset() on its own socket, then tcp_v4_do_rcv() answers the "
          "data with an RST. So tcp:tcp_receive_reset (and a kprobe on "
          "tcp_reset) fires before the RST is sent, and no RST ever "
          "arrives; the application reads ECONNRESET all the same. rsttrace "
          "reports it as kind abort (the segment has no RST; without the "
          "segment, tcp_rcv_state_process called tcp_reset() itself rather "
          "than through tcp_validate_incoming()), on every kernel.")
def _data_after_shutdown(pair):
    # a's application is told the peer reset it, though none did
    return "a: %s" % traffic.data_after_shutdown(pair)


@scenario("linger2-negative", "TCP_LINGER2 < 0: close() in FIN_WAIT2 "
          "aborts instead of waiting", ["004"])
def _linger2(pair):
    cli, srv = traffic.connected(pair, 4)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_LINGER2, -1)
    cli.shutdown(socket.SHUT_WR)        # FIN, ACKed: FIN_WAIT2
    time.sleep(0.1)
    cli.close()
    return traffic.recv_error(srv)


@scenario("linger2-negative-fin-wait1", "TCP_LINGER2 < 0 and close() "
          "with the FIN not yet acknowledged: the kernel aborts when the "
          "ACK comes", ["004"],
          # tcp_rcv_state_process: tcp_done(), counted as TCPAbortOnData
          counters={"a": {"TcpExt:TCPAbortOnData": 1}})
def _linger2_fin_wait1(pair):
    cli, srv = traffic.connected(pair, 4)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_LINGER2, -1)
    cli.close()                         # FIN_WAIT1, orphaned
    return traffic.recv_error(srv)


@scenario("socket-killed", "an administrator kills the socket (ss -K)",
          [])
def _killed(pair):
    cli, srv = traffic.connected(pair, 4)
    pair.run("a", "ss", "-K", "dst", pair.ipv4["b"])
    return traffic.recv_error(srv)
