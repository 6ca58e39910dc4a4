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
          "TIME_WAIT; its ACK reaches a server that has closed", ["002"])
def _tw_assassination(pair):
    cli, srv = traffic.connected(pair, 4)
    cport, sport = cli.getsockname()[1], srv.getsockname()[1]
    cli.shutdown(socket.SHUT_WR)        # the client closes first
    traffic.recv_error(srv)
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
