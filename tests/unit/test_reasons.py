"""Reason names come from the running kernel: its BTF (enum sk_rst_reason)
or the tcp_send_reset tracepoint's format. Never a fixed table."""

import pytest

from btfgen import REASONS_6_10, Builder, add_reason_enum
from rsttrace.kernel.reasons import ReasonNames, from_btf, from_tracepoint_format

# `cat /sys/kernel/tracing/events/tcp/tcp_send_reset/format` on 6.18.44. The
# state's __print_symbolic comes first and must not be taken for the reason.
FORMAT_6_18 = (
    'name: tcp_send_reset\n'
    'ID: 2280\n'
    'format:\n'
    '\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n'
    '\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n'
    '\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n'
    '\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n'
    '\n'
    '\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n'
    '\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n'
    '\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;\n'
    '\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;\n'
    '\tfield:__u8 saddr[28];\toffset:32;\tsize:28;\tsigned:0;\n'
    '\tfield:__u8 daddr[28];\toffset:60;\tsize:28;\tsigned:0;\n'
    '\n'
    'print fmt: "skbaddr=%p skaddr=%p src=%pISpc dest=%pISpc state=%s reason=%s", REC->skbaddr, REC->skaddr, REC->saddr, REC->daddr, REC->state ? __print_symbolic(REC->state, { TCP_ESTABLISHED, "TCP_ESTABLISHED" }, { TCP_SYN_SENT, "TCP_SYN_SENT" }, { TCP_SYN_RECV, "TCP_SYN_RECV" }, { TCP_FIN_WAIT1, "TCP_FIN_WAIT1" }, { TCP_FIN_WAIT2, "TCP_FIN_WAIT2" }, { TCP_TIME_WAIT, "TCP_TIME_WAIT" }, { TCP_CLOSE, "TCP_CLOSE" }, { TCP_CLOSE_WAIT, "TCP_CLOSE_WAIT" }, { TCP_LAST_ACK, "TCP_LAST_ACK" }, { TCP_LISTEN, "TCP_LISTEN" }, { TCP_CLOSING, "TCP_CLOSING" }, { TCP_NEW_SYN_RECV, "TCP_NEW_SYN_RECV" }) : "UNKNOWN", __print_symbolic(REC->reason, { 0, "NOT_SPECIFIED" }, { 1, "NO_SOCKET" }, { 2, "TCP_INVALID_ACK_SEQUENCE" }, { 3, "TCP_RFC7323_PAWS" }, { 4, "TCP_TOO_OLD_ACK" }, { 5, "TCP_ACK_UNSENT_DATA" }, { 6, "TCP_FLAGS" }, { 7, "TCP_OLD_ACK" }, { 8, "TCP_ABORT_ON_DATA" }, { 9, "TCP_TIMEWAIT_SOCKET" }, { 10, "INVALID_SYN" }, { 11, "TCP_ABORT_ON_CLOSE" }, { 12, "TCP_ABORT_ON_LINGER" }, { 13, "TCP_ABORT_ON_MEMORY" }, { 14, "TCP_STATE" }, { 15, "TCP_KEEPALIVE_TIMEOUT" }, { 16, "TCP_DISCONNECT_WITH_DATA" }, { 17, "MPTCP_RST_EUNSPEC" }, { 18, "MPTCP_RST_EMPTCP" }, { 19, "MPTCP_RST_ERESOURCE" }, { 20, "MPTCP_RST_EPROHIBIT" }, { 21, "MPTCP_RST_EWQ2BIG" }, { 22, "MPTCP_RST_EBADPERF" }, { 23, "MPTCP_RST_EMIDDLEBOX" }, { 24, "ERROR" }, { 25, "MAX" })\n'
)

# The same event before 6.10 (tcp_event_sk_skb, 5.x-6.9): no reason field.
# Its print fmt has other __print_symbolic calls, with numeric pairs.
FORMAT_6_1 = (
    'name: tcp_send_reset\n'
    'ID: 1402\n'
    'format:\n'
    '\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n'
    '\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n'
    '\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n'
    '\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n'
    '\n'
    '\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n'
    '\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n'
    '\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;\n'
    '\tfield:__u16 sport;\toffset:28;\tsize:2;\tsigned:0;\n'
    '\tfield:__u16 dport;\toffset:30;\tsize:2;\tsigned:0;\n'
    '\tfield:__u16 family;\toffset:32;\tsize:2;\tsigned:0;\n'
    '\tfield:__u8 saddr[4];\toffset:34;\tsize:4;\tsigned:0;\n'
    '\tfield:__u8 daddr[4];\toffset:38;\tsize:4;\tsigned:0;\n'
    '\tfield:__u8 saddr_v6[16];\toffset:42;\tsize:16;\tsigned:0;\n'
    '\tfield:__u8 daddr_v6[16];\toffset:58;\tsize:16;\tsigned:0;\n'
    '\n'
    'print fmt: "skbaddr=%p skaddr=%p family=%s sport=%hu dport=%hu '
    'saddr=%pI4 daddr=%pI4 saddrv6=%pI6c daddrv6=%pI6c state=%s", '
    'REC->skbaddr, REC->skaddr, __print_symbolic(REC->family, '
    '{ 2, "AF_INET" }, { 10, "AF_INET6" }), REC->sport, REC->dport, '
    'REC->saddr, REC->daddr, REC->saddr_v6, REC->daddr_v6, '
    '__print_symbolic(REC->state, { 1, "TCP_ESTABLISHED" }, '
    '{ 2, "TCP_SYN_SENT" }, { 3, "TCP_SYN_RECV" }, { 7, "TCP_CLOSE" }, '
    '{ 10, "TCP_LISTEN" }, { 12, "TCP_NEW_SYN_RECV" })\n'
)

# 4.x-5.x: no state, no family in the print fmt's symbolic calls.
FORMAT_OLD = (
    'name: tcp_send_reset\n'
    'format:\n'
    '\tfield:const void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n'
    '\tfield:const void * skaddr;\toffset:16;\tsize:8;\tsigned:0;\n'
    '\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;\n'
    '\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;\n'
    '\tfield:__u8 saddr[4];\toffset:28;\tsize:4;\tsigned:0;\n'
    '\tfield:__u8 daddr[4];\toffset:32;\tsize:4;\tsigned:0;\n'
    '\tfield:__u8 saddr_v6[16];\toffset:36;\tsize:16;\tsigned:0;\n'
    '\tfield:__u8 daddr_v6[16];\toffset:52;\tsize:16;\tsigned:0;\n'
    '\n'
    'print fmt: "sport=%hu dport=%hu saddr=%pI4 daddr=%pI4 saddrv6=%pI6c '
    'daddrv6=%pI6c", REC->sport, REC->dport, REC->saddr, REC->daddr, '
    'REC->saddr_v6, REC->daddr_v6\n'
)

# enum sk_rst_reason of 6.18 (this machine), in order: six TCP reasons were
# inserted after INVALID_SYN after 6.10, so every later number moved.
REASONS_6_18 = (REASONS_6_10[:11] + [
    "TCP_ABORT_ON_CLOSE", "TCP_ABORT_ON_LINGER", "TCP_ABORT_ON_MEMORY",
    "TCP_STATE", "TCP_KEEPALIVE_TIMEOUT", "TCP_DISCONNECT_WITH_DATA"]
    + REASONS_6_10[11:])


def kernel_btf(reasons=None, endian="<"):
    b = Builder(endian)
    b.int("int", 4, signed=True)
    if reasons is not None:
        add_reason_enum(b, reasons)
    # another enum with the prefix-less names, to be ignored
    b.enum("tcp_ca_event", [("CA_EVENT_TX_START", 0), ("NOT_SPECIFIED", 7)])
    return b.btf()


# -- tracepoint format ---------------------------------------------------------

def test_format_of_this_kernel():
    names = from_tracepoint_format(FORMAT_6_18)
    assert names == dict(enumerate(REASONS_6_18))
    assert len(names) == 26
    assert names[0] == "NOT_SPECIFIED"
    assert names[11] == "TCP_ABORT_ON_CLOSE"
    assert names[25] == "MAX"


def test_state_symbols_are_not_reasons():
    names = from_tracepoint_format(FORMAT_6_18)
    assert not any(n.startswith("TCP_") and n[4:] in ("ESTABLISHED", "LISTEN")
                   for n in names.values())


@pytest.mark.parametrize("text", [FORMAT_6_1, FORMAT_OLD, "", None],
                         ids=["6.1", "4.x", "empty", "none"])
def test_format_without_reason(text):
    assert from_tracepoint_format(text) == {}


def test_format_with_reason_before_state():
    """Field order is the kernel's business: the reason's pairs are still
    the ones inside __print_symbolic(REC->reason, ...)."""
    text = ('print fmt: "reason=%s state=%s", __print_symbolic(REC->reason, '
            '{ 0, "NOT_SPECIFIED" }, { 1, "NO_SOCKET" }), '
            '__print_symbolic(REC->state, { 1, "TCP_ESTABLISHED" })\n')
    assert from_tracepoint_format(text) == {0: "NOT_SPECIFIED",
                                            1: "NO_SOCKET"}


def test_format_ending_without_newline():
    assert from_tracepoint_format(FORMAT_6_18.rstrip("\n")) == dict(
        enumerate(REASONS_6_18))


# -- BTF ------------------------------------------------------------------------

@pytest.mark.parametrize("endian", ["<", ">"])
def test_from_btf_strips_prefix(endian):
    names = from_btf(kernel_btf(REASONS_6_10, endian))
    assert names == dict(enumerate(REASONS_6_10))
    assert not any(n.startswith("SK_RST_REASON_") for n in names.values())


def test_from_btf_keeps_unprefixed_names():
    b = Builder()
    b.enum("sk_rst_reason", [("SK_RST_REASON_NO_SOCKET", 1), ("ODD", 2)])
    assert from_btf(b.btf()) == {1: "NO_SOCKET", 2: "ODD"}


def test_from_btf_before_6_10():
    assert from_btf(kernel_btf(None)) == {}


def test_numbering_comes_from_the_kernel():
    old = ReasonNames.for_kernel(kernel_btf(REASONS_6_10))
    new = ReasonNames.for_kernel(kernel_btf(REASONS_6_18))
    assert old.name(11) == "MPTCP_RST_EUNSPEC"
    assert new.name(11) == "TCP_ABORT_ON_CLOSE"
    assert old.name(19) == "MAX"
    assert new.name(19) == "MPTCP_RST_ERESOURCE"
    # the same name under different numbers
    assert old.name(18) == new.name(24) == "ERROR"


def test_btf_is_preferred_to_the_format():
    names = ReasonNames.for_kernel(kernel_btf(REASONS_6_10), FORMAT_6_18)
    assert names.name(11) == "MPTCP_RST_EUNSPEC"


def test_format_used_when_btf_lacks_the_enum():
    names = ReasonNames.for_kernel(kernel_btf(None), FORMAT_6_18)
    assert names.name(11) == "TCP_ABORT_ON_CLOSE"
    names = ReasonNames.for_kernel(None, FORMAT_6_18)
    assert names.name(16) == "TCP_DISCONNECT_WITH_DATA"


# -- ReasonNames ------------------------------------------------------------------

def test_no_reason():
    names = ReasonNames.for_kernel(None, FORMAT_6_18)
    assert names.name(-1) is None
    assert names.name(None) is None


def test_unknown_number():
    names = ReasonNames.for_kernel(None, FORMAT_6_18)
    assert names.name(26) == "REASON_26"
    assert names.name(1000) == "REASON_1000"


def test_kernel_without_any_names():
    names = ReasonNames.for_kernel(kernel_btf(None), FORMAT_6_1)
    assert names.names == {}
    assert names.name(0) == "REASON_0"
    assert names.name(-1) is None


def test_names_are_copied():
    src = {1: "NO_SOCKET"}
    names = ReasonNames(src)
    src[1] = "CHANGED"
    assert names.name(1) == "NO_SOCKET"
