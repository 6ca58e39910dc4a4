"""Hand-made segments (rsttrace.lab.craft): RST validation and RFC 5961
challenge ACKs, a bad checksum."""

import socket
import time

from rsttrace.lab import craft, traffic
from rsttrace.lab.catalogue.registry import scenario
from rsttrace.lab.craft import ACK, RST, SYN


@scenario("bad-checksum", "a SYN with a bad TCP checksum to a closed port "
          "is dropped before any RST", ["003"])
def _bad_checksum(pair):
    port = traffic.free_port(pair, "b", 4)
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


@scenario("syn-existing-5tuple", "a SYN on the 4-tuple of a connection the "
          "server still has: challenge ACK, the client's RST, then a new "
          "connection", ["002", "003"])
def _syn_existing(pair):
    cli, srv = traffic.connected(pair, 4, keep_listener=True)
    cport = cli.getsockname()[1]
    port = srv.getsockname()[1]
    traffic.block_output(pair, "a")            # the client forgets silently
    traffic.linger0(cli)
    cli.close()
    traffic.unblock(pair, "a")
    again = pair.socket("a")
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind((pair.ipv4["a"], cport))
    again.settimeout(5)
    err = traffic.expect_error(again, lambda: again.connect((pair.ipv4["b"], port)))
    return err or "reconnected"


def _established_seq(pair):
    cli, srv = traffic.connected(pair, 4)
    cli.send(b"x")
    srv.recv(1)
    time.sleep(0.05)
    b_snd, b_rcv = craft.sequence_numbers(srv)
    return cli, srv, b_snd, b_rcv


def _into(pair, cli, srv, seq, flags):
    """A hand-made segment into the connection, from a's end to b's."""
    craft.send_segment(pair, "a", "b", cli.getsockname()[1],
                       srv.getsockname()[1], seq=seq, ack=0, flags=flags)
    time.sleep(0.05)


def _survives(cli, srv):
    srv.send(b"still alive")
    return "connection survives: %r" % cli.recv(20)


@scenario("challenge-ack-rst", "an in-window RST with the wrong sequence "
          "number gets a challenge ACK (RFC 5961)", ["003"])
def _challenge_rst(pair):
    cli, srv, b_snd, b_rcv = _established_seq(pair)
    _into(pair, cli, srv, b_rcv + 100, RST)
    return _survives(cli, srv)


@scenario("challenge-ack-syn", "a SYN inside an established connection gets "
          "a challenge ACK (RFC 5961)", ["003"])
def _challenge_syn(pair):
    cli, srv, b_snd, b_rcv = _established_seq(pair)
    _into(pair, cli, srv, b_rcv + 10, SYN)
    return None


@scenario("out-of-window-rst", "an RST outside the receive window is "
          "dropped silently (tcp_validate_incoming)", ["003"])
def _oow_rst(pair):
    cli, srv, b_snd, b_rcv = _established_seq(pair)
    _into(pair, cli, srv, b_rcv + (1 << 30), RST)
    return _survives(cli, srv)


@scenario("exact-rst", "an RST with exactly the expected sequence number "
          "closes the connection", ["003"])
def _exact_rst(pair):
    cli, srv, b_snd, b_rcv = _established_seq(pair)
    _into(pair, cli, srv, b_rcv, RST)
    return traffic.recv_error(srv)


@scenario("syn-ack-bad-timestamp", "a SYN-ACK with the right ACK but a "
          "timestamp echo the client never sent: PAWS rejects it with an RST",
          [], counters={"a": {"TcpExt:PAWSActive": 1}})
def _syn_ack_bad_timestamp(pair):
    port = traffic.free_port(pair, "b", 4)
    traffic.block_input(pair, "b", "tcp dport %d" % port)   # no RST from b
    cli = pair.socket("a")
    cli.setblocking(False)
    iss, tsval = craft.outgoing_syn(
        pair, "a", port, lambda: cli.connect_ex((pair.ipv4["b"], port)))
    if tsval is None:
        raise RuntimeError("the client's SYN has no timestamp option")
    # b's SYN-ACK, forged: ACK exact, TSecr a minute older than the SYN
    craft.send_segment(pair, "b", "a", port, cli.getsockname()[1], seq=7,
                       ack=iss + 1, flags=SYN | ACK,
                       options=craft.timestamps(1, tsval - 60000))
    traffic.settle(0.1)
    return "client still connecting: %s" % (
        cli.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
