"""Netfilter REJECT --reject-with tcp-reset: nft and iptables rules,
rules whose modules load while tracing, and conntrack's INVALID verdict."""

from rsttrace.lab import craft, kmods, traffic
from rsttrace.lab.catalogue.registry import scenario

# netfilter's REJECT modules, users before what they use: the rules load
# them on demand (nft_reject_inet, ipt_REJECT...), and they load the ones
# with nf_send_reset and nf_send_reset6 (nf_reject_ipv4, nf_reject_ipv6)
REJECT_MODULES = ("nft_reject_inet", "nft_reject_ipv4", "nft_reject_ipv6",
                  "nft_reject", "ipt_REJECT", "ip6t_REJECT",
                  "nf_reject_ipv4", "nf_reject_ipv6")
# and all that these scenarios' rules load (iptables-nft's compat layer,
# conntrack), which they unload again when they loaded them (kmods.kept)
NETFILTER_MODULES = REJECT_MODULES + (
    "xt_tcpudp", "nft_compat", "x_tables", "nft_ct", "nf_conntrack",
    "nf_defrag_ipv4", "nf_defrag_ipv6")


@scenario("firewall-reject-late", "REJECT rules added while tracing, the "
          "first to need their modules: iptables and ip6tables REJECT "
          "--reject-with tcp-reset, then nft inet `reject with tcp reset`; "
          "nf_reject_ipv4/6 load with them, and are unloaded again while "
          "tracing", ["002"],
          kernel_note="a REJECT rule loads netfilter's reject modules when "
          "it is added (nf_reject_ipv4 holds nf_send_reset), often after a "
          "tracer started: kprobe mode hooks nf_send_reset as the module "
          "loads (the kernel arms a kprobe on MODULE:function then), "
          "tracepoint mode sees the RST only as a packet (--packets)")
def _late(pair):
    with kmods.kept(NETFILTER_MODULES, pair.catch_up):
        # as on a host where no rule needed them yet (a module in use by
        # the host's own rules stays: then it was there before)
        kmods.unload(REJECT_MODULES)
        pair.catch_up()         # the tracer sees them gone
        seen = []
        for family, tool in ((4, "iptables"), (6, "ip6tables")):
            lst, port = traffic.listener(pair, family=traffic.FAMILIES[family])
            rule = ["INPUT", "-p", "tcp", "--dport", str(port), "-j",
                    "REJECT", "--reject-with", "tcp-reset"]
            pair.run("b", tool, "-A", *rule)
            seen.append("%s: %s" % (tool, _refused(pair, family, port)))
            pair.run("b", tool, "-D", *rule)
        for family in (4, 6):
            seen.append("nft inet IPv%d: %s" % (family, _reject(pair, family)))
    return "; ".join(seen)


@scenario("firewall-reject", "netfilter REJECT --reject-with tcp-reset "
          "(nft)", ["002"])
def _firewall(pair):
    with kmods.kept(NETFILTER_MODULES, pair.catch_up):
        return _reject(pair, 4)


@scenario("firewall-reject-ipv6", "the same for IPv6 (nft inet table)",
          ["002"])
def _firewall6(pair):
    with kmods.kept(NETFILTER_MODULES, pair.catch_up):
        return _reject(pair, 6)


def _reject(pair, family):
    """An nft inet rule `reject with tcp reset` for a listener's port,
    and a connection to it; the rule is gone afterwards."""
    lst, port = traffic.listener(pair, family=traffic.FAMILIES[family])
    pair.nft("b", "add table inet rsttrace_fw; add chain inet rsttrace_fw "
             "reject_in { type filter hook input priority 0; }; add rule "
             "inet rsttrace_fw reject_in tcp dport %d reject with tcp reset"
             % port)
    try:
        return _refused(pair, family, port)
    finally:
        pair.nft("b", "delete table inet rsttrace_fw")


def _refused(pair, family, port):
    fam = traffic.FAMILIES[family]
    cli = pair.socket("a", fam)
    cli.settimeout(5)
    return traffic.expect_error(cli, lambda: cli.connect((pair.addr("b", fam),
                                                          port)))


@scenario("conntrack-invalid", "conntrack marks a segment beyond the "
          "receiver's window INVALID (nf_conntrack_tcp_be_liberal=0) and "
          "`ct state invalid reject with tcp reset` answers it with an RST "
          "that resets the client's connection", ["003"],
          kernel_note="with nf_conntrack_tcp_be_liberal=0 (the default) "
          "conntrack checks every segment against the window it has seen "
          "(tcp_in_window, nf_conntrack_proto_tcp.c) and marks one beyond it "
          "INVALID; a rule that rejects INVALID packets with a TCP reset "
          "then resets a live connection, the RST taking its sequence "
          "number from the offending segment's ACK (nf_send_reset). "
          "be_liberal=1, or a drop instead of a reject, leaves the "
          "connection alone")
def _conntrack_invalid(pair):
    with kmods.kept(NETFILTER_MODULES, pair.catch_up):
        # the rule before the connection: conntrack must see the handshake
        # (a connection picked up mid-stream is tracked liberally)
        pair.nft("b", "add table inet rsttrace_ct; add chain inet "
                 "rsttrace_ct ct_in { type filter hook input priority 0; }; "
                 "add rule inet rsttrace_ct ct_in ct state invalid reject "
                 "with tcp reset")
        try:
            return _invalid_segment(pair)
        finally:
            pair.nft("b", "delete table inet rsttrace_ct")


def _invalid_segment(pair):
    """A connection, and a segment into it that conntrack finds beyond the
    receiver's window; what the client's recv() then says."""
    pair.sysctl("b", "net.netfilter.nf_conntrack_tcp_be_liberal", 0)
    cli, srv = traffic.connected(pair, 4)
    cli.send(b"x")
    srv.recv(1)
    b_snd, b_rcv = craft.sequence_numbers(srv)
    # data a quarter of the sequence space beyond b's window, acking what
    # b sent: "SEQ is over the upper bound" for conntrack
    craft.send_segment(pair, "a", "b", cli.getsockname()[1],
                       srv.getsockname()[1], seq=b_rcv + 0x40000000,
                       ack=b_snd, flags=craft.ACK | craft.PSH, payload=b"y")
    traffic.wait_readable(cli, 2)
    return traffic.expect_error(cli, lambda: cli.recv(10)) or "no reset"
