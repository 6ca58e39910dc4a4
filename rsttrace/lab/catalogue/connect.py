"""Connections the other side does not know: a closed port, a forgotten
or expired connection, a late segment after TIME_WAIT."""

import socket
import time

from rsttrace.lab import craft, traffic
from rsttrace.lab.catalogue.registry import scenario
from rsttrace.lab.craft import ACK


@scenario("no-listener", "SYN to a port nothing listens on", ["000", "002",
                                                                "003", "004"])
def _no_listener(pair):
    return traffic.closed_port(pair, 4).error


@scenario("no-listener-ipv6", "the same over IPv6", ["000"])
def _no_listener6(pair):
    return traffic.closed_port(pair, 6).error


@scenario("half-open", "the server forgot the connection (crash, restart) "
          "and the client sends data", ["000", "002"])
def _half_open(pair):
    cli, srv = traffic.connected(pair, 4)
    traffic.block_output(pair, "b")            # b's abort never reaches a
    traffic.linger0(srv)
    srv.close()
    traffic.unblock(pair, "b")
    cli.send(b"request")
    return traffic.recv_error(cli)


@scenario("close-after-connect", "the client closes right after connect; "
          "the SYN-ACK finds no socket", ["002"])
def _close_after_connect(pair):
    lst, port = traffic.listener(pair)
    traffic.block_output(pair, "b")            # hold the SYN-ACK back
    cli = pair.socket("a")
    cli.setblocking(False)
    cli.connect_ex((pair.ipv4["b"], port))
    cli.close()                         # SYN_SENT: closes without an RST
    traffic.unblock(pair, "b")                 # the retransmitted SYN-ACK arrives
    time.sleep(1.6)
    return None


@scenario("time-wait-assassination", "a late segment hits the client's "
          "TIME_WAIT; its ACK reaches a server that has closed, whose RST "
          "kills the TIME_WAIT socket (RFC 1337)", ["002"])
def _tw_assassination(pair):
    return _late_segment_to_time_wait(pair)


@scenario("time-wait-rfc1337", "the same with net.ipv4.tcp_rfc1337=1 on "
          "the client: its TIME_WAIT socket ignores the RST", ["002"],
          kernel_note="tcp_timewait_state_process() drops a TIME_WAIT socket "
          "for an RST with exactly the expected sequence number unless "
          "tcp_rfc1337 is set; then the RST is ignored and the socket "
          "lives out its time. Nothing in the kernel reports either case "
          "(no tcp_reset(), no counter): rsttrace sees the kill at "
          "inet_twsk_deschedule_put (kprobe/fentry) or as the RST dropped "
          "naming an unhashed TIME_WAIT socket (tracepoint mode with "
          "--packets, 6.11+), and reports nothing when the socket survives.")
def _tw_rfc1337(pair):
    pair.sysctl("a", "net.ipv4.tcp_rfc1337", 1)
    return _late_segment_to_time_wait(pair)


def _late_segment_to_time_wait(pair):
    cli, srv = traffic.connected(pair, 4)
    cport, sport = cli.getsockname()[1], srv.getsockname()[1]
    cli.shutdown(socket.SHUT_WR)        # the client closes first
    traffic.recv_error(srv)
    srv.close()                         # server: LAST_ACK -> CLOSED
    time.sleep(0.1)
    cli.close()                         # client: TIME_WAIT
    # A late, old segment from the server: TIME_WAIT answers with an ACK
    # (snd_nxt, rcv_nxt), which the server (no socket now) resets with
    # exactly the sequence number TIME_WAIT expects.
    craft.send_segment(pair, "b", "a", sport, cport, seq=1, ack=1,
                       flags=ACK, payload=b"old")
    traffic.settle(0.1)
    return "client's TIME_WAIT socket %s" % (
        "kept" if _time_wait(pair, "a") else "gone")


def _time_wait(pair, side):
    """The TIME_WAIT sockets of one side (ss)."""
    return pair.run(side, "ss", "-tanH", "state", "time-wait").strip()


@scenario("fin-wait2-rst", "the server aborts (SO_LINGER {1, 0}) after "
          "the client closed: its RST kills the client's orphan in the "
          "FIN_WAIT2 substate, tcp_rfc1337=1 or not", ["002"])
def _fin_wait2_rst(pair):
    pair.sysctl("a", "net.ipv4.tcp_rfc1337", 1)
    cli, srv = traffic.connected(pair, 4)
    # The server's ACK of the FIN must meet the orphan after close() has
    # returned (while close() holds the socket, the ACK is deferred and
    # the socket stays a full one): drop it, and let the retransmitted FIN
    # be ACKed.
    traffic.block_input(pair, "a")
    cli.close()
    traffic.unblock_input(pair, "a")
    for _ in range(30):                 # FIN_WAIT2 substate: a TIME_WAIT sock
        time.sleep(0.1)
        if _fin_wait2_orphan(pair, "a"):
            break
    else:
        raise RuntimeError("the client never became a FIN_WAIT2 orphan")
    traffic.linger0(srv)
    srv.close()
    traffic.settle(0.1)
    return "client's FIN_WAIT2 orphan %s" % (
        "kept" if _fin_wait2_orphan(pair, "a") else "gone")


def _fin_wait2_orphan(pair, side):
    """A FIN_WAIT2 orphan turned timewait socket (ss shows its substate,
    with the timewait timer)."""
    return "timewait" in pair.run(side, "ss", "-tanoH", "state",
                                  "fin-wait-2")


@scenario("nat-expired", "the NAT mapping of an idle connection expired: "
          "the server's next segment finds no translation back and meets "
          "no socket", ["002"])
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
    cli, srv = traffic.connected(pair, 4)
    pair.sysctl("a", "net.netfilter.nf_conntrack_tcp_timeout_established", 1)
    cli.send(b"x")
    srv.recv(1)
    time.sleep(2.5)                     # the conntrack entry expires
    srv.send(b"late reply")
    return traffic.recv_error(srv)
