"""pcap filter expressions (`rsttrace trace 'tcp port 443'`, tcpdump's
syntax, man 7 pcap-filter) run in the kernel.

The expression is compiled by libpcap itself (Debian's libpcap0.8, through
ctypes: pcap_open_dead(DLT_RAW) + pcap_compile) to classic BPF, which is
translated here to a C function built into rsttrace's BPF program. There it
runs on the RST's IP + TCP header, rebuilt from the event on the spot
(bpf/pcap_header.h), so an RST the expression rejects costs no user-space
work. What differs from tcpdump is said in docs/pcap.md.

Classic BPF jumps only forward, so its translation is a straight run of C
with forward gotos, which the verifier accepts as it is. Loads read a
per-CPU map value rather than the stack: the verifier allows the
data-dependent offsets of `ld [x + k]` there on every kernel (on the stack
only since 5.11), and handle() already uses most of the 512 stack bytes.
"""

import ctypes
import ctypes.util
import re

from rsttrace.errors import RsttraceError, UsageError

DLT_RAW = 12                 # libpcap's DLT_RAW on Linux (pcap/dlt.h)
SNAPLEN = 65535
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
MAX_INSNS = 4096             # classic BPF's limit (BPF_MAXINSNS)
PCAP_BUF = 64                # bpf/pcap_header.h
MEMWORDS = 16                # BPF_MEMWORDS

# Classic BPF instruction fields (include/uapi/linux/bpf_common.h).
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, H, B = 0x00, 0x08, 0x10
IMM, ABS, IND, MEM, LEN, MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xa0
SRC_X = 0x08
RVAL_A = 0x10
TAX, TXA = 0x00, 0x80
SIZE = {W: 4, H: 2, B: 1}
ALU_OPS = {0x00: "+", 0x10: "-", 0x20: "*", 0x30: "/", 0x40: "|", 0x50: "&",
           0x60: "<<", 0x70: ">>", 0x90: "%", 0xa0: "^"}
ALU_NEG = 0x80
JA = 0x00
JUMP_TESTS = {0x10: "A == %s", 0x20: "A > %s", 0x30: "A >= %s",
              0x40: "A & %s"}
# Every opcode classic BPF has (libpcap's bpf_filter(), the same list).
VALID_CODES = frozenset(
    [LD | IMM, LD | MEM, LD | LEN, LDX | IMM, LDX | MEM, LDX | LEN,
     LDX | MSH | B, ST, STX, ALU | ALU_NEG, JMP | JA, RET, RET | RVAL_A,
     MISC | TAX, MISC | TXA] +
    [LD | mode | size for mode in (ABS, IND) for size in (W, H, B)] +
    [ALU | op | src for op in ALU_OPS for src in (0, SRC_X)] +
    [JMP | op | src for op in JUMP_TESTS for src in (0, SRC_X)])


class _Insn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint),
                ("bf_insns", ctypes.POINTER(_Insn))]


_lib = None


def libpcap():
    """libpcap through ctypes (loaded once)."""
    global _lib
    if _lib is not None:
        return _lib
    for name in ("libpcap.so.0.8", "libpcap.so.1", ctypes.util.find_library(
            "pcap")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        raise RsttraceError(
            "filter expressions need libpcap, which is not installed",
            "install it (Debian: apt-get install libpcap0.8)")
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program),
                                 ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    _lib = lib
    return lib


def compile_expression(expression):
    """The classic BPF program libpcap makes of `expression` for raw IP
    packets: a list of (code, jt, jf, k). A bad expression is a UsageError
    carrying libpcap's own message."""
    lib = libpcap()
    handle = lib.pcap_open_dead(DLT_RAW, SNAPLEN)
    if not handle:
        raise RsttraceError("libpcap could not open a raw-IP handle",
                            "check the libpcap installation")
    prog = _Program()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog),
                            expression.encode("utf-8"), 1,
                            PCAP_NETMASK_UNKNOWN):
            raise UsageError("filter expression %r: %s" % (
                expression, lib.pcap_geterr(handle).decode(
                    "utf-8", "replace")),
                "see `man 7 pcap-filter` for the syntax")
        insns = [(i.code, i.jt, i.jf, i.k)
                 for i in prog.bf_insns[:prog.bf_len]]
        lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)
    return insns


def _untranslatable(expression, why):
    return UsageError("filter expression %r cannot run in the kernel: %s"
                      % (expression, why),
                      "leave that part out and filter the -w or --json "
                      "output instead")


def _load(size, offset, target):
    """C for `target = ` the big-endian value of `size` bytes at p[offset]
    (offset: a C expression)."""
    parts = ["(u32)p[%s%s]%s" % (offset, " + %d" % i if i else "",
                                 " << %d" % (8 * (size - 1 - i))
                                 if i < size - 1 else "")
             for i in range(size)]
    return "%s = %s;" % (target, " | ".join(parts))


def _load_insn(code, k):
    """C of a load into A (LD) or X (LDX). An out-of-bounds load ends the
    program with 0, as classic BPF does."""
    mode, size = code & 0xe0, code & 0x18
    reg = "A" if code & 0x07 == LD else "X"
    if mode == IMM:
        return ["%s = %#xU;" % (reg, k)]
    if mode == LEN:
        return ["%s = len;" % reg]
    if mode == MEM:
        return ["%s = M%d;" % (reg, k)]
    if mode == MSH:
        if k >= PCAP_BUF:
            return ["return 0;"]
        return ["if (len <= %d) return 0;" % k,
                "X = (p[%d] & 0xf) << 2;" % k]
    if reg == "X" or mode not in (ABS, IND):
        raise ValueError("load %#x" % code)
    width = SIZE[size]
    if k + width > PCAP_BUF:
        return ["return 0;"]                # beyond any header: no match
    if mode == ABS:
        return ["if (len < %d) return 0;" % (k + width),
                _load(width, str(k), "A")]
    # IND: X + k + width <= len, without wrapping; the mask bounds the
    # offset for the verifier (it changes nothing: off < len).
    return ["if (len < %d || X > len - %d) return 0;"
            % (k + width, k + width),
            "off = (X + %d) & (PCAP_BUF - 1);" % k,
            _load(width, "off", "A")]


def _alu_insn(code, k):
    """C of an arithmetic instruction on A (32-bit unsigned); division by
    zero and shifts by 32 or more as libpcap's bpf_filter() has them."""
    op = code & 0xf0
    src = "X" if code & SRC_X else "%#xU" % k
    if op == ALU_NEG:
        return ["A = 0U - A;"]
    sym = ALU_OPS[op]
    if sym in ("/", "%"):
        if code & SRC_X:
            return ["if (!X) return 0;", "A %s= X;" % sym]
        return ["return 0;"] if k == 0 else ["A %s= %s;" % (sym, src)]
    if sym in ("<<", ">>"):
        if code & SRC_X:
            return ["A = X < 32 ? A %s X : 0;" % sym]
        return ["A = 0;"] if k >= 32 else ["A %s= %s;" % (sym, src)]
    return ["A %s= %s;" % (sym, src)]


def _jump_insn(n, code, jt, jf, k, label):
    """C of a jump: forward gotos to the labels of instructions."""
    op = code & 0xf0
    if op == JA:
        return ["goto %s;" % label(n + 1 + k)]
    test = JUMP_TESTS[op] % ("X" if code & SRC_X else "%#xU" % k)
    if jt == jf:
        return ["goto %s;" % label(n + 1 + jt)] if jt else []
    if jf == 0:
        return ["if (%s) goto %s;" % (test, label(n + 1 + jt))]
    if jt == 0:
        return ["if (!(%s)) goto %s;" % (test, label(n + 1 + jf))]
    return ["if (%s) goto %s;" % (test, label(n + 1 + jt)),
            "goto %s;" % label(n + 1 + jf)]


def _translate_one(n, code, jt, jf, k, label):
    """The C lines of instruction n; label(m) names instruction m."""
    cls = code & 0x07
    if cls in (LD, LDX):
        return _load_insn(code, k)
    if cls in (ST, STX):
        return ["M%d = %s;" % (k, "A" if cls == ST else "X")]
    if cls == ALU:
        return _alu_insn(code, k)
    if cls == JMP:
        return _jump_insn(n, code, jt, jf, k, label)
    if cls == RET:
        return ["return A != 0;"] if code & 0x18 == RVAL_A else \
            ["return %d;" % (k != 0)]
    if cls == MISC:
        return ["X = A;"] if code & 0xf8 == TAX else ["A = X;"]
    raise ValueError("opcode %#x" % code)


def _check(expression, insns):
    """Reject what the translation cannot express."""
    if len(insns) > MAX_INSNS:
        raise _untranslatable(expression, "%d instructions, more than %d"
                              % (len(insns), MAX_INSNS))
    for n, (code, jt, jf, k) in enumerate(insns):
        cls = code & 0x07
        if cls == JMP and code & 0xf0 == JA and k >= 1 << 31:
            # libpcap's `protochain` loops with backward jumps
            raise _untranslatable(expression, "it loops (protochain)")
        targets = [n + 1 + k] if cls == JMP and code & 0xf0 == JA else \
            [n + 1 + jt, n + 1 + jf] if cls == JMP else []
        if any(t >= len(insns) for t in targets):
            raise _untranslatable(expression, "a jump beyond its end")
        if cls in (LD, LDX, ST, STX) and (code & 0xe0 == MEM or
                                          cls in (ST, STX)) and \
                k >= MEMWORDS:
            raise _untranslatable(expression, "scratch memory word %d" % k)
        if code not in VALID_CODES:
            raise _untranslatable(expression, "instruction %#x" % code)
    if not insns or insns[-1][0] & 0x07 != RET:
        raise _untranslatable(expression, "it does not end in a return")


def match_function(expression, insns):
    """C of `static __always_inline int pcap_match(const u8 *p, u32 len)`:
    insns run on the len-byte header at p (a buffer of PCAP_BUF + 4
    bytes); 1 when the expression keeps the packet."""
    _check(expression, insns)
    lines = [_translate_one(n, *insn, label=lambda m: "I%d" % m)
             for n, insn in enumerate(insns)]
    targets = {int(t) for one in lines for line in one
               for t in re.findall(r"goto I(\d+);", line)}
    body = []
    for n, one in enumerate(lines):
        if n in targets:
            body.append("I%d:" % n)
        body += ["\t" + line for line in one]
    text = "\n".join(body)
    mems = sorted({int(m) for m in re.findall(r"\bM(\d+)\b", text)})
    regs = [r for r in ("A", "X") if re.search(r"\b%s\b" % r, text)]
    decls = ["\tu32 %s;" % ", ".join("%s = 0" % r for r in regs)] if regs \
        else []
    if "off" in text:
        decls.append("\tu32 off;")
    if mems:
        decls.append("\tu32 %s;" % ", ".join("M%d = 0" % m for m in mems))
    return ("static __always_inline int pcap_match(const u8 *p, u32 len)\n"
            "{\n%s\n%s\n}\n" % ("".join(d + "\n" for d in decls), text))


def c_code(expression):
    """The C that builds `expression` into bpf/rsttrace.bpf.c: prepended to
    it, and called from pass_filters() (FILTER_PCAP)."""
    insns = compile_expression(expression)
    return """\
/* Generated by rsttrace (rsttrace/trace/pcap_filter.py) from the pcap
 * filter expression %s
 * by libpcap for raw IP (%d classic BPF instructions), run on the RST's
 * header as bpf/pcap_header.h rebuilds it. */
#include "rsttrace.h"
#include "pcap_header.h"

struct pcap_buf {
	u8 p[PCAP_BUF + 4];      /* + 4: a masked offset plus a word's bytes */
};
BPF_PERCPU_ARRAY(pcap_scratch, struct pcap_buf, 1);

%s
static __always_inline int pcap_filter(const struct rst_event *ev)
{
	int zero = 0;
	struct pcap_buf *b = pcap_scratch.lookup(&zero);
	u32 len;

	if (!b)
		return 0;
	len = pcap_header(ev, b->p);
	return len && pcap_match(b->p, len);
}

""" % (_comment_safe(expression), len(insns), match_function(expression,
                                                             insns))


def _comment_safe(text):
    """`text` quoted for a C comment."""
    return repr(text).replace("*/", "* /")
