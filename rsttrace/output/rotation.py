"""The names of a rotated capture (`trace -o FILE -C SIZE`): one fact,
read by the writer (rsttrace.output.capture) and by `report`
(rsttrace.output.records).

    FILE, FILE.1, FILE.2, ...          in the order they were written
    FILE.1.gz, ...                     with --compress, once closed

Like tcpdump's -C, the first file has the name given and the next ones a
number after it, counting up; unlike tcpdump (FILE1, FILE2, and with -W a
cycle FILE0..FILE<W-1> overwritten in turn, whose order only the
modification times tell), the number follows a dot and never wraps, so the
names alone say the order, and a file keeps its name once written (no
renames under a reader or a `tail -f`). With -W the oldest files are
removed, so a set may start at any number.
"""

import re

GZ = ".gz"


def member(name, number, compressed=False):
    """The name of file `number` (0: the first) of capture `name`."""
    return (name if number == 0 else "%s.%d" % (name, number)) + \
        (GZ if compressed else "")


def parse(name, entry):
    """(number, compressed) when directory entry `entry` is a file of the
    capture `name`, else None."""
    m = re.fullmatch(re.escape(name) + r"(?:\.([1-9][0-9]*))?(\.gz)?", entry)
    if m is None:
        return None
    return int(m.group(1) or 0), m.group(2) is not None


def members(name, entries):
    """[(number, compressed, entry)] of capture `name` among `entries`,
    in the order written. A number present both ways (a run stopped
    between compressing a file and removing the original) counts once,
    uncompressed: both are whole."""
    found = {}
    for entry in entries:
        got = parse(name, entry)
        if got is not None:
            number, compressed = got
            if number not in found or not compressed:
                found[number] = (number, compressed, entry)
    return [found[n] for n in sorted(found)]


def size_bytes(text):
    """`-C SIZE` in bytes, the way tcpdump reads it: a whole number of
    millions of bytes, or with a k, m or g suffix of KiB, MiB or GiB.
    None when `text` is not such a size."""
    m = re.fullmatch(r"([1-9][0-9]*)([kKmMgG]?)", text.strip())
    if m is None:
        return None
    unit = {"": 1000000, "k": 1 << 10, "m": 1 << 20,
            "g": 1 << 30}[m.group(2).lower()]
    return int(m.group(1)) * unit
