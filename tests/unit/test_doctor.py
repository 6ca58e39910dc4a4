"""What doctor says about each hook, in the words trace uses at start:
a function in a module that is not loaded now, one not in this kernel,
one inlined."""

from rsttrace.cli import doctor
from rsttrace.kernel import features
from rsttrace.trace import hooks
from rsttrace.trace.hooks import Placement


def test_doctor_tells_not_loaded_from_absent_from_inlined(monkeypatch):
    def place(h, mode, kbtf=None, version=None):
        if h.key == "NF_SEND_RESET":
            return Placement(h, "nf_send_reset",
                             {"sk": 1, "skb": 2, "reason": -1}, "btf",
                             module="nf_reject_ipv4", loaded=False)
        if h.key == "NF_SEND_RESET6":
            return Placement(h, skipped="not in this kernel: module "
                             "nf_reject_ipv6 is neither built in nor "
                             "installed in /lib/modules/x/")
        if h.key == "TCP_SEND_CHALLENGE_ACK":
            return Placement(h, skipped="inlined: tcp_send_challenge_ack is "
                             "not in kallsyms (the compiler merged it into "
                             "its callers)")
        return Placement(h, h.target, {"sk": 0}, "btf")
    monkeypatch.setattr(hooks, "place", place)
    monkeypatch.setattr(features, "load_btf", lambda: None)
    rows = {hook: (symbol, status)
            for hook, symbol, status in doctor.hook_rows("kprobe")}
    assert rows["nf_send_reset"] == (
        "nf_send_reset", "in module nf_reject_ipv4, not loaded now: hooked "
        "when it loads (args from btf: sk=arg1, skb=arg2)")
    assert rows["nf_send_reset6"] == (
        "-", "not in this kernel: module nf_reject_ipv6 is neither built in "
        "nor installed in /lib/modules/x/")
    assert rows["tcp_send_challenge_ack"][1].startswith("inlined: ")
    assert rows["tcp_reset"] == ("tcp_reset", "used (args from btf: sk=arg0)")
