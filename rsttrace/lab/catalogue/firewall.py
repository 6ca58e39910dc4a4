"""Netfilter REJECT --reject-with tcp-reset."""


from rsttrace.lab import traffic
from rsttrace.lab.catalogue.registry import scenario


@scenario("firewall-reject", "netfilter REJECT --reject-with tcp-reset "
          "(nft)", ["002"])
def _firewall(pair):
    return _reject(pair, 4)


@scenario("firewall-reject-ipv6", "the same for IPv6 (nft inet table)",
          ["002"])
def _firewall6(pair):
    return _reject(pair, 6)


def _reject(pair, family):
    fam = traffic.FAMILIES[family]
    lst, port = traffic.listener(pair, family=fam)
    pair.nft("b", "add table inet rsttrace_fw; add chain inet rsttrace_fw "
             "reject_in { type filter hook input priority 0; }; add rule "
             "inet rsttrace_fw reject_in tcp dport %d reject with tcp reset"
             % port)
    cli = pair.socket("a", fam)
    cli.settimeout(5)
    return traffic.expect_error(cli, lambda: cli.connect((pair.addr("b", fam),
                                                   port)))
