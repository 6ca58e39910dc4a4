"""A small BTF encoder for unit tests: builds synthetic kernels' BTF blobs
(include/uapi/linux/btf.h, Documentation/bpf/btf.rst) so rsttrace's BTF
reader, reason names and offsets can be checked without /sys/kernel/btf.

Types are kept symbolic until blob() so that a struct's members can be set
after the types they refer to (set_members), as in real BTF where ids may
point forward.
"""

import struct

from rsttrace.kernel import btf as btfmod

BTF_MAGIC = 0xEB9F


class Builder:
    """A kernel's BTF, or with `base` a module's: split BTF whose type ids
    and string offsets continue the base's."""

    def __init__(self, endian="<", base=None):
        self.e = endian
        self._types = []            # dicts, id = index + first
        self._first = 1 + (len(base._types) if base else 0)
        self._base = base
        self._str_base = len(base._strs) if base else 0
        self._strs = bytearray(b"" if base else b"\0")
        self._str_off = {"": 0}
        self._u32 = None

    # -- strings and raw types ------------------------------------------

    def str_off(self, s):
        off = self._str_off.get(s)
        if off is None and self._base is not None:
            off = self._base._str_off.get(s)
        if off is None:
            off = self._str_off[s] = self._str_base + len(self._strs)
            self._strs += s.encode() + b"\0"
        return off

    def _add(self, kind, name="", size_or_type=0, kind_flag=0, vlen=None,
             fixed=None, items=(), item_fmt=""):
        self._types.append({
            "name": name, "kind": kind, "kind_flag": kind_flag,
            "size_or_type": size_or_type, "vlen": vlen,
            "fixed": fixed, "items": list(items), "item_fmt": item_fmt})
        return len(self._types) + self._first - 1

    # -- kinds ----------------------------------------------------------

    def int(self, name, size, signed=False, bits=None, char=False,
            bool_=False):
        enc = (1 if signed else 0) | (2 if char else 0) | (4 if bool_ else 0)
        return self._add(btfmod.KIND_INT, name, size,
                         fixed=("I", ((enc << 24) | (bits or size * 8),)))

    def u32(self):
        if self._u32 is None:
            self._u32 = self.int("unsigned int", 4)
        return self._u32

    def ptr(self, to):
        return self._add(btfmod.KIND_PTR, "", to)

    def typedef(self, name, to):
        return self._add(btfmod.KIND_TYPEDEF, name, to)

    def const(self, to):
        return self._add(btfmod.KIND_CONST, "", to)

    def volatile(self, to):
        return self._add(btfmod.KIND_VOLATILE, "", to)

    def restrict(self, to):
        return self._add(btfmod.KIND_RESTRICT, "", to)

    def type_tag(self, name, to):
        return self._add(btfmod.KIND_TYPE_TAG, name, to)

    def array(self, elem, nelems, index=None):
        index = index or self.u32()
        return self._add(btfmod.KIND_ARRAY, "", 0,
                         fixed=("III", (elem, index, nelems)))

    def struct(self, name, size, members=(), union=False):
        """members: (name, type_id, bit_offset[, bitfield_size]). The
        kind_flag (bitfield encoding) is set when any member has a
        bitfield size, or when forced by set_members(kind_flag=True)."""
        tid = self._add(btfmod.KIND_UNION if union else btfmod.KIND_STRUCT,
                        name, size, item_fmt="III")
        self.set_members(tid, members)
        return tid

    def union(self, name, size, members=()):
        return self.struct(name, size, members, union=True)

    def set_members(self, tid, members, kind_flag=None):
        t = self._types[tid - self._first]
        ms = [tuple(m) + (0,) * (4 - len(m)) for m in members]
        flag = any(m[3] for m in ms) if kind_flag is None else kind_flag
        t["kind_flag"] = int(flag)
        t["items"] = [(name, mtype, ((bits << 24) | off) if flag else off)
                      for name, mtype, off, bits in ms]

    def fwd(self, name, union=False):
        return self._add(btfmod.KIND_FWD, name, 0, kind_flag=int(union))

    def enum(self, name, values, size=4, signed=None):
        """values: [(NAME, value)]; signed by default when any value is
        negative (kind_flag, as pahole >= 1.24 writes it)."""
        if signed is None:
            signed = any(v < 0 for _, v in values)
        return self._add(btfmod.KIND_ENUM, name, size, kind_flag=int(signed),
                         items=[(n, v) for n, v in values],
                         item_fmt="Ii" if signed else "II")

    def enum64(self, name, values, size=8, signed=None):
        if signed is None:
            signed = any(v < 0 for _, v in values)
        items = []
        for n, v in values:
            v &= (1 << 64) - 1
            items.append((n, v & 0xFFFFFFFF, v >> 32))
        return self._add(btfmod.KIND_ENUM64, name, size,
                         kind_flag=int(signed), items=items, item_fmt="III")

    def func_proto(self, ret, params):
        """params: [(name, type_id)]; names may be ''."""
        return self._add(btfmod.KIND_FUNC_PROTO, "", ret, items=params,
                         item_fmt="II")

    def func(self, name, proto, linkage=1):
        # vlen holds the linkage here, not a count of trailing records.
        return self._add(btfmod.KIND_FUNC, name, proto, vlen=linkage)

    def var(self, name, type_id, linkage=1):
        return self._add(btfmod.KIND_VAR, name, type_id,
                         fixed=("I", (linkage,)))

    def datasec(self, name, size, entries):
        """entries: [(var_type_id, offset, size)]"""
        return self._add(btfmod.KIND_DATASEC, name, size,
                         items=[(0,) + tuple(e) for e in entries],
                         item_fmt="_III")

    def float(self, name, size):
        return self._add(btfmod.KIND_FLOAT, name, size)

    def decl_tag(self, name, type_id, component_idx=-1):
        return self._add(btfmod.KIND_DECL_TAG, name, type_id,
                         fixed=("i", (component_idx,)))

    # -- encoding -------------------------------------------------------

    def _encode_type(self, t):
        e = self.e
        vlen = t["vlen"] if t["vlen"] is not None else len(t["items"])
        info = (t["kind_flag"] << 31) | (t["kind"] << 24) | vlen
        out = struct.pack(e + "III", self.str_off(t["name"]), info,
                          t["size_or_type"])
        if t["fixed"]:
            fmt, vals = t["fixed"]
            out += struct.pack(e + fmt, *vals)
        fmt = t["item_fmt"]
        for item in t["items"]:
            if fmt == "_III":           # DATASEC: no name, all numbers
                out += struct.pack(e + "III", *item[1:])
                continue
            name, rest = item[0], item[1:]
            out += struct.pack(e + fmt, self.str_off(name), *rest)
        return out

    def types_bytes(self):
        return b"".join(self._encode_type(t) for t in self._types)

    def blob(self, strings_first=False):
        types = self.types_bytes()       # interns every name first
        strs = bytes(self._strs)
        if strings_first:
            str_off, type_off = 0, len(strs)
            body = strs + types
        else:
            type_off, str_off = 0, len(types)
            body = types + strs
        hdr = struct.pack(self.e + "HBBIIIII", BTF_MAGIC, 1, 0, 24,
                          type_off, len(types), str_off, len(strs))
        return hdr + body

    def btf(self, **kw):
        return btfmod.BTF(self.blob(**kw))


# ---------------------------------------------------------------------------
# Ready-made pieces of a synthetic kernel.

# enum sk_rst_reason as of 6.10 (include/net/rstreason.h), in order.
REASONS_6_10 = [
    "NOT_SPECIFIED", "NO_SOCKET", "TCP_INVALID_ACK_SEQUENCE",
    "TCP_RFC7323_PAWS", "TCP_TOO_OLD_ACK", "TCP_ACK_UNSENT_DATA",
    "TCP_FLAGS", "TCP_OLD_ACK", "TCP_ABORT_ON_DATA", "TCP_TIMEWAIT_SOCKET",
    "INVALID_SYN", "MPTCP_RST_EUNSPEC", "MPTCP_RST_EMPTCP",
    "MPTCP_RST_ERESOURCE", "MPTCP_RST_EPROHIBIT", "MPTCP_RST_EWQ2BIG",
    "MPTCP_RST_EBADPERF", "MPTCP_RST_EMIDDLEBOX", "ERROR", "MAX",
]


def add_reason_enum(b, names, prefix="SK_RST_REASON_"):
    return b.enum("sk_rst_reason",
                  [(prefix + n, i) for i, n in enumerate(names)])


def nf_reject_module_btf():
    """BTF with netfilter's nf_send_reset (as its module nf_reject_ipv4
    has it since 5.10): (net, sk, oldskb, hook)."""
    b = Builder()
    b.func("nf_send_reset", b.func_proto(0, [
        ("net", b.ptr(b.struct("net", 8))),
        ("sk", b.ptr(b.struct("sock", 8))),
        ("oldskb", b.ptr(b.struct("sk_buff", 8))),
        ("hook", b.int("int", 4, signed=True))]))
    return b.btf()
