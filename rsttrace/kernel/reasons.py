"""Names of the kernel's RST reasons (enum sk_rst_reason, 6.10+).

The numbers shift between kernels as reasons are added, so names come from
the running kernel: its BTF, else the tcp_send_reset tracepoint's format
(its print fmt lists `{ N, "NAME" }` pairs). Never from a fixed table.
"""

import re

from rsttrace.kernel import btf as btfmod

PREFIX = "SK_RST_REASON_"

_SYMBOLIC = re.compile(r"__print_symbolic\(REC->reason,(.*?)\)\s*(?:,|$)",
                       re.S)
_PAIR = re.compile(r"\{\s*(-?\d+)\s*,\s*\"([A-Za-z0-9_]+)\"\s*\}")


def from_btf(kbtf):
    """{value: NAME} from `enum sk_rst_reason`, prefix dropped; {} when
    the kernel predates it."""
    try:
        values = kbtf.enum("sk_rst_reason")
    except btfmod.BTFError:
        return {}
    return {v: n[len(PREFIX):] if n.startswith(PREFIX) else n
            for v, n in values.items()}


def from_tracepoint_format(text):
    """{value: NAME} from the format file of tcp:tcp_send_reset."""
    if not text:
        return {}
    m = _SYMBOLIC.search(text)
    if not m:
        return {}
    return {int(v): n for v, n in _PAIR.findall(m.group(1))}


class ReasonNames:
    """Decodes reason numbers for one kernel."""

    def __init__(self, names):
        self.names = dict(names)

    @classmethod
    def for_kernel(cls, kbtf=None, tp_format=None):
        names = from_btf(kbtf) if kbtf is not None else {}
        if not names:
            names = from_tracepoint_format(tp_format)
        return cls(names)

    def name(self, value):
        """The reason's name; None for 'no reason' (-1); REASON_<n> for a
        number this kernel does not name."""
        if value is None or value < 0:
            return None
        return self.names.get(value, "REASON_%d" % value)
