"""A small ELF writer for unit tests: a 64-bit relocatable object with a
symbol table and any other sections, as a kernel module's file is
(rsttrace.kernel.elf reads it)."""

import struct

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
STT_OBJECT, STT_FUNC = 1, 2


def module_file(functions=(), objects=(), sections=None, endian="<"):
    """The bytes of an ELF object whose .symtab holds `functions` (STT_FUNC)
    and `objects` (STT_OBJECT), with extra {name: bytes} sections."""
    e = endian
    strtab = bytearray(b"\0")
    syms = [struct.pack(e + "IBBHQQ", 0, 0, 0, 0, 0, 0)]
    for kind, names in ((STT_FUNC, functions), (STT_OBJECT, objects)):
        for name in names:
            syms.append(struct.pack(e + "IBBHQQ", len(strtab), kind, 0, 1,
                                    0, 0))
            strtab += name.encode() + b"\0"
    # (name, type, body, link): index 0 is the null section
    secs = [(".symtab", SHT_SYMTAB, b"".join(syms), 2),
            (".strtab", SHT_STRTAB, bytes(strtab), 0)]
    for name, body in (sections or {}).items():
        secs.append((name, SHT_PROGBITS, body, 0))
    shstr = bytearray(b"\0")
    names = []
    for name, *_ in secs + [(".shstrtab",)]:
        names.append(len(shstr))
        shstr += name.encode() + b"\0"
    secs.append((".shstrtab", SHT_STRTAB, bytes(shstr), 0))
    body = bytearray()
    offsets = []
    for _, _, data, _ in secs:
        offsets.append(64 + len(body))
        body += data
    shoff = 64 + len(body)
    ident = b"\x7fELF" + bytes([2, 1 if e == "<" else 2, 1]) + bytes(9)
    header = ident + struct.pack(e + "HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff,
                                 0, 64, 0, 0, 64, len(secs) + 1, len(secs))
    shdrs = [bytes(64)]
    for i, (_, kind, data, link) in enumerate(secs):
        shdrs.append(struct.pack(e + "IIQQQQIIQQ", names[i], kind, 0, 0,
                                 offsets[i], len(data), link, 0, 1,
                                 24 if kind == SHT_SYMTAB else 0))
    return bytes(header + body + b"".join(shdrs))
