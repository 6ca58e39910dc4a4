"""A small reader for the kernel's BTF (/sys/kernel/btf/vmlinux), and a
module's (/sys/kernel/btf/<module>, or the .BTF section of its file), which
extends the kernel's.

rsttrace reads struct fields at offsets it looks up here, so that the BPF
program reads this kernel's layout and not the layout of whatever header tree
bcc compiles against. Only what rsttrace needs is decoded: struct/union member
offsets (through anonymous members), enums, and function prototypes.

Format: include/uapi/linux/btf.h and Documentation/bpf/btf.rst.
"""

import struct

VMLINUX = "/sys/kernel/btf/vmlinux"

BTF_MAGIC = 0xEB9F

# enum btf_kind values (include/uapi/linux/btf.h)
KIND_INT = 1
KIND_PTR = 2
KIND_ARRAY = 3
KIND_STRUCT = 4
KIND_UNION = 5
KIND_ENUM = 6
KIND_FWD = 7
KIND_TYPEDEF = 8
KIND_VOLATILE = 9
KIND_CONST = 10
KIND_RESTRICT = 11
KIND_FUNC = 12
KIND_FUNC_PROTO = 13
KIND_VAR = 14
KIND_DATASEC = 15
KIND_FLOAT = 16
KIND_DECL_TAG = 17
KIND_TYPE_TAG = 18
KIND_ENUM64 = 19

# Bytes that follow the 12-byte common header: (fixed, per vlen item).
_TRAILER = {
    KIND_INT: (4, 0),
    KIND_ARRAY: (12, 0),
    KIND_STRUCT: (0, 12),
    KIND_UNION: (0, 12),
    KIND_ENUM: (0, 8),
    KIND_FUNC_PROTO: (0, 8),
    KIND_VAR: (4, 0),
    KIND_DATASEC: (0, 12),
    KIND_DECL_TAG: (4, 0),
    KIND_ENUM64: (0, 12),
}

# Kinds that only qualify another type.
_MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT,
              KIND_TYPE_TAG)


class BTFError(Exception):
    """The BTF blob is malformed or lacks what was asked for."""


class Member:
    """A struct/union member: name, type id, bit offset, bitfield size."""

    __slots__ = ("name", "type_id", "bit_offset", "bitfield_size")

    def __init__(self, name, type_id, bit_offset, bitfield_size):
        self.name = name
        self.type_id = type_id
        self.bit_offset = bit_offset
        self.bitfield_size = bitfield_size


class BTF:
    """Parsed BTF. Types are indexed by id; names are resolved lazily.

    A module's BTF is split BTF on top of the kernel's (`base`): its type
    ids continue after the kernel's last one and its string offsets after
    the kernel's string section, so the two are read as one.
    """

    def __init__(self, data, base=None):
        if len(data) < 24:
            raise BTFError("BTF blob too short (%d bytes)" % len(data))
        magic_le = struct.unpack_from("<H", data, 0)[0]
        if magic_le == BTF_MAGIC:
            self._e = "<"
        elif struct.unpack_from(">H", data, 0)[0] == BTF_MAGIC:
            self._e = ">"
        else:
            raise BTFError("not a BTF blob (bad magic 0x%04x)" % magic_le)
        e = self._e
        (hdr_len,) = struct.unpack_from(e + "I", data, 4)
        type_off, type_len, str_off, str_len = struct.unpack_from(
            e + "IIII", data, 8)
        if hdr_len + max(type_off + type_len, str_off + str_len) > len(data):
            raise BTFError("BTF sections run past the end of the blob")
        strs = data[hdr_len + str_off: hdr_len + str_off + str_len]
        shift = 0
        # id -> byte offset of the type's header; id 0 is "void".
        self._offsets = [None]
        self._by_name = {}
        self._data, self._strs = data, strs
        if base is not None:
            if base._e != e:
                raise BTFError("module BTF of another byte order")
            shift = len(base._data)
            self._data = base._data + data
            self._strs = base._strs + strs
            self._offsets = list(base._offsets)
            self._by_name = dict(base._by_name)
        self._index(shift + hdr_len + type_off,
                    shift + hdr_len + type_off + type_len)

    @classmethod
    def load(cls, path=VMLINUX, base=None):
        with open(path, "rb") as f:
            return cls(f.read(), base)

    # -- parsing -----------------------------------------------------------

    def _index(self, pos, end):
        """Index the types from byte `pos` to `end` of the data; their ids
        follow those already indexed (a module's follow the kernel's)."""
        data = self._data
        unpack = struct.Struct(self._e + "III").unpack_from
        offsets = self._offsets
        by_name = {}
        trailer = _TRAILER
        tid = len(offsets) - 1
        while pos < end:
            if pos + 12 > end:
                raise BTFError("BTF type section is truncated")
            name_off, info, _ = unpack(data, pos)
            tid += 1
            offsets.append(pos)
            kind = (info >> 24) & 0x1F
            vlen = info & 0xFFFF
            fixed, per = trailer.get(kind, (0, 0))
            if name_off:
                by_name.setdefault(name_off, []).append(tid)
            pos += 12 + fixed + per * vlen
        if pos != end:
            raise BTFError("BTF type section is truncated")
        # Map names (strings) to ids only once, after the walk.
        strs = self._strs
        named = self._by_name
        for off, ids in by_name.items():
            nul = strs.find(b"\0", off)
            name = strs[off:nul].decode("ascii", "replace")
            named[name] = named.get(name, []) + ids

    def _str(self, off):
        nul = self._strs.find(b"\0", off)
        return self._strs[off:nul].decode("ascii", "replace")

    def _header(self, tid):
        if tid <= 0 or tid >= len(self._offsets):
            raise BTFError("no BTF type with id %d" % tid)
        pos = self._offsets[tid]
        name_off, info, size_or_type = struct.unpack_from(
            self._e + "III", self._data, pos)
        return pos, name_off, info, size_or_type

    # -- queries -----------------------------------------------------------

    def kind(self, tid):
        if tid == 0:
            return 0
        return (self._header(tid)[2] >> 24) & 0x1F

    def name(self, tid):
        if tid == 0:
            return "void"
        return self._str(self._header(tid)[1])

    def ids(self, name, kind=None):
        """Ids of the types called `name`, optionally of one kind."""
        ids = self._by_name.get(name, [])
        if kind is None:
            return list(ids)
        return [i for i in ids if self.kind(i) == kind]

    def find(self, name, kind):
        """The id of the first type of `kind` called `name`, or None."""
        ids = self.ids(name, kind)
        return ids[0] if ids else None

    def has(self, name, kind=None):
        return bool(self.ids(name, kind))

    def size(self, tid):
        """Byte size of a type, following typedefs and qualifiers."""
        tid = self.resolve(tid)
        kind = self.kind(tid)
        _, _, info, size_or_type = self._header(tid)
        if kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM,
                    KIND_ENUM64, KIND_FLOAT, KIND_DATASEC):
            return size_or_type
        if kind == KIND_PTR:
            return 8
        if kind == KIND_ARRAY:
            elem, _, nelems = self._array(tid)
            return self.size(elem) * nelems
        raise BTFError("type %d (kind %d) has no size" % (tid, kind))

    def _array(self, tid):
        pos = self._header(tid)[0]
        return struct.unpack_from(self._e + "III", self._data, pos + 12)

    def resolve(self, tid):
        """Follow typedefs and qualifiers to the underlying type."""
        seen = 0
        while tid and self.kind(tid) in _MODIFIERS:
            tid = self._header(tid)[3]
            seen += 1
            if seen > 64:
                raise BTFError("type chain too long at id %d" % tid)
        return tid

    def pointee(self, tid):
        """For a pointer (after qualifiers), the id it points to, else None."""
        tid = self.resolve(tid)
        if self.kind(tid) != KIND_PTR:
            return None
        return self.resolve(self._header(tid)[3])

    def members(self, tid):
        """Members of a struct or union, in order."""
        tid = self.resolve(tid)
        pos, _, info, _ = self._header(tid)
        kind = (info >> 24) & 0x1F
        if kind not in (KIND_STRUCT, KIND_UNION):
            raise BTFError("type %d is not a struct or union" % tid)
        kind_flag = info >> 31
        out = []
        unpack = struct.Struct(self._e + "III").unpack_from
        for i in range(info & 0xFFFF):
            name_off, mtype, moff = unpack(self._data, pos + 12 + 12 * i)
            if kind_flag:
                out.append(Member(self._str(name_off), mtype,
                                  moff & 0xFFFFFF, moff >> 24))
            else:
                out.append(Member(self._str(name_off), mtype, moff, 0))
        return out

    def struct_id(self, name):
        """The id of the complete struct or union called `name`."""
        for kind in (KIND_STRUCT, KIND_UNION):
            for tid in self.ids(name, kind):
                return tid
        raise BTFError("struct %s is not in this kernel's BTF" % name)

    def member(self, struct_name, path):
        """Locate a member by dotted path, descending through anonymous
        structs/unions as C does. Returns (bit_offset, bitfield_size,
        type_id) with the offset relative to the start of `struct_name`."""
        tid = self.struct_id(struct_name)
        bit_offset = 0
        bitfield_size = 0
        for part in path.split("."):
            found = self._find_member(tid, part)
            if found is None:
                raise BTFError("struct %s has no member %s"
                               % (struct_name, path))
            off, bitfield_size, tid = found
            bit_offset += off
        return bit_offset, bitfield_size, tid

    def _find_member(self, tid, name):
        for m in self.members(tid):
            if m.name == name:
                return m.bit_offset, m.bitfield_size, m.type_id
            if m.name == "":
                inner = self.resolve(m.type_id)
                if self.kind(inner) in (KIND_STRUCT, KIND_UNION):
                    found = self._find_member(inner, name)
                    if found is not None:
                        off, bits, t = found
                        return m.bit_offset + off, bits, t
        return None

    def offsetof(self, struct_name, path):
        """Byte offset of a (non-bitfield) member, as C offsetof()."""
        bit_offset, bitfield_size, _ = self.member(struct_name, path)
        if bitfield_size or bit_offset % 8:
            raise BTFError("%s.%s is a bitfield" % (struct_name, path))
        return bit_offset // 8

    def enum(self, name):
        """Enumerators of `enum name` as {value: NAME}."""
        for kind in (KIND_ENUM, KIND_ENUM64):
            for tid in self.ids(name, kind):
                return self._enumerators(tid)
        raise BTFError("enum %s is not in this kernel's BTF" % name)

    def enumerator(self, const_name):
        """The value of an enumerator constant, searching every enum."""
        for kind in (KIND_ENUM, KIND_ENUM64):
            for tid in range(1, len(self._offsets)):
                if self.kind(tid) != kind:
                    continue
                for value, n in self._enumerators(tid).items():
                    if n == const_name:
                        return value
        raise BTFError("no enumerator %s in this kernel's BTF" % const_name)

    def _enumerators(self, tid):
        pos, _, info, _ = self._header(tid)
        kind = (info >> 24) & 0x1F
        signed = bool(info >> 31)
        out = {}
        for i in range(info & 0xFFFF):
            if kind == KIND_ENUM:
                name_off, val = struct.unpack_from(
                    self._e + ("Ii" if signed else "II"), self._data,
                    pos + 12 + 8 * i)
            else:
                name_off, lo, hi = struct.unpack_from(
                    self._e + "III", self._data, pos + 12 + 12 * i)
                val = (hi << 32) | lo
                if signed and val >= 1 << 63:
                    val -= 1 << 64
            out[val] = self._str(name_off)
        return out

    def func_params(self, name):
        """Parameters of function `name` as [(param_name, type_id)], from
        its FUNC record; None if BTF has no such function."""
        fid = self.find(name, KIND_FUNC)
        if fid is None:
            return None
        return self.proto_params(self._header(fid)[3])

    def proto_params(self, proto_id):
        proto_id = self.resolve(proto_id)
        pos, _, info, _ = self._header(proto_id)
        if (info >> 24) & 0x1F != KIND_FUNC_PROTO:
            raise BTFError("type %d is not a function prototype" % proto_id)
        out = []
        for i in range(info & 0xFFFF):
            name_off, ptype = struct.unpack_from(
                self._e + "II", self._data, pos + 12 + 8 * i)
            out.append((self._str(name_off), ptype))
        return out

    def tracepoint_params(self, tp_name):
        """Arguments of raw tracepoint `tp_name` as [type_id], from the
        `btf_trace_<tp>` typedef (a pointer to a prototype whose first
        parameter is the tracepoint's `void *__data`, dropped here)."""
        tid = self.find("btf_trace_" + tp_name, KIND_TYPEDEF)
        if tid is None:
            return None
        proto = self.pointee(self._header(tid)[3])
        if proto is None:
            raise BTFError("btf_trace_%s is not a function pointer" % tp_name)
        return [t for _, t in self.proto_params(proto)[1:]]

    def describe(self, tid):
        """A short C-like spelling of a type, for messages and checks:
        'struct sock *', 'enum sk_rst_reason', 'int'."""
        tid = self.resolve(tid)
        kind = self.kind(tid)
        if tid == 0:
            return "void"
        if kind == KIND_PTR:
            return self.describe(self._header(tid)[3]) + " *"
        prefix = {KIND_STRUCT: "struct ", KIND_UNION: "union ",
                  KIND_ENUM: "enum ", KIND_ENUM64: "enum "}.get(kind, "")
        if kind == KIND_FWD:
            prefix = "union " if self._header(tid)[2] >> 31 else "struct "
        return prefix + self.name(tid)
