"""C from bpf/ compiled into a shared library with the host's gcc
(scripts/setup installs it), for unit tests of code that otherwise only
runs inside a BPF program: the types and macros bcc would provide are
defined here the way the kernel defines them."""

import ctypes
import os
import subprocess

BPF_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "bpf")

PRELUDE = """\
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int s32;
typedef unsigned long long u64;
#define __always_inline inline __attribute__((always_inline))
"""


def shared_library(source, directory):
    """`source` (after PRELUDE, with bpf/ on the include path) built into
    directory/lib.so and loaded."""
    path = os.path.join(str(directory), "lib.c")
    with open(path, "w") as f:
        f.write(PRELUDE + source)
    lib = os.path.join(str(directory), "lib.so")
    res = subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-Wall",
                          "-Werror", "-Wno-unknown-pragmas", "-I", BPF_DIR,
                          "-o", lib, path], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return ctypes.CDLL(lib)
