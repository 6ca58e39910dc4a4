"""A kernel module's file read without loading it: its sections (.BTF) and
the functions in its symbol table.

Module files are ELF relocatable objects, compressed or not (.ko, .ko.xz,
.ko.gz, .ko.zst as kmod names them). Only what rsttrace asks of them is
decoded; anything malformed is ElfError, never a crash: rsttrace runs as
root and these files are input like any other.

Format: the System V ABI's ELF chapter (include/uapi/linux/elf.h).
"""

import gzip
import lzma
import shutil
import struct
import subprocess
import zlib

SHT_SYMTAB = 2
STT_FUNC = 2
# the largest module Debian ships is about 60 MiB uncompressed
MAX_SIZE = 256 << 20


class ElfError(Exception):
    """The file is not a readable ELF object."""


def read_module(path):
    """The bytes of the module file at `path`, decompressed."""
    with open(path, "rb") as f:
        data = f.read(MAX_SIZE + 1)
    try:
        if path.endswith(".xz"):
            data = lzma.LZMADecompressor().decompress(data, MAX_SIZE + 1)
        elif path.endswith(".gz"):
            data = gzip.decompress(data)
        elif path.endswith(".zst"):
            data = _unzstd(data)
    except (lzma.LZMAError, OSError, EOFError, zlib.error) as e:
        raise ElfError("%s: cannot decompress (%s)" % (path, e))
    if len(data) > MAX_SIZE:
        raise ElfError("%s: larger than %d MiB" % (path, MAX_SIZE >> 20))
    return data


def _unzstd(data):
    # Python has no zstd before 3.14; the zstd command does.
    try:
        from compression import zstd  # Python 3.14
        return zstd.decompress(data)
    except ImportError:
        pass
    if shutil.which("zstd") is None:
        raise OSError("no zstd decompressor (install zstd)")
    out = subprocess.run(["zstd", "-q", "-d", "-c"], input=data,
                         capture_output=True, check=False)
    if out.returncode:
        raise OSError(out.stderr.decode("utf-8", "replace").strip())
    return out.stdout


class Elf:
    """The sections of a 64-bit ELF object, by name."""

    def __init__(self, data):
        if len(data) < 64 or data[:4] != b"\x7fELF":
            raise ElfError("not an ELF object")
        if data[4] != 2:
            raise ElfError("not a 64-bit ELF object")
        self._e = {1: "<", 2: ">"}.get(data[5])
        if self._e is None:
            raise ElfError("unknown ELF byte order %d" % data[5])
        self._data = data
        shoff, = self._unpack("Q", 0x28)
        shentsize, shnum, shstrndx = self._unpack("HHH", 0x3A)
        if shentsize < 64 or shstrndx >= shnum:
            raise ElfError("bad section header table")
        self._sections = [self._unpack("IIQQQQIIQQ", shoff + i * shentsize)
                          for i in range(shnum)]
        names = self._body(self._sections[shstrndx])
        self.sections = {_cstr(names, s[0]): s for s in self._sections}

    def _unpack(self, fmt, offset):
        try:
            return struct.unpack_from(self._e + fmt, self._data, offset)
        except struct.error:
            raise ElfError("truncated at offset %d" % offset)

    def _body(self, section):
        offset, size = section[4], section[5]
        if offset + size > len(self._data):
            raise ElfError("a section runs past the end of the file")
        return self._data[offset:offset + size]

    def section(self, name):
        """The contents of section `name`, or None."""
        s = self.sections.get(name)
        return self._body(s) if s is not None else None

    def functions(self):
        """The names of the functions in the symbol table."""
        for s in self._sections:
            if s[1] == SHT_SYMTAB:
                symtab = s
                break
        else:
            return set()
        if symtab[6] >= len(self._sections):
            raise ElfError("the symbol table names no string table")
        strings = self._body(self._sections[symtab[6]])
        body = self._body(symtab)
        out = set()
        for off in range(0, len(body) - 23, 24):
            name, info = struct.unpack_from(self._e + "IB", body, off)
            if info & 0xF == STT_FUNC:
                out.add(_cstr(strings, name))
        return out


def _cstr(blob, offset):
    end = blob.find(b"\0", offset)
    return blob[offset:end if end >= 0 else len(blob)].decode(
        "ascii", "replace")
