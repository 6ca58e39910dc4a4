"""`trace -o FILE` (rsttrace.output.capture): written as it goes, whole
lines only; an existing FILE is truncated once the run has begun and left
as it was by a run that never began; -C/-W/--compress rotate like tcpdump
at line boundaries; `report` reads the set back in order."""

import errno
import gzip
import os
import stat

import pytest

from rsttrace.errors import RsttraceError
from rsttrace.output import capture
from rsttrace.output import lines as lines_module
from rsttrace.output import rotation
from rsttrace.output.capture import Capture
from rsttrace.output.report import load, summarise
from rsttrace.output.stream_errors import OutputError

LINE = '{"kind":"sent","sport":%d,"pad":"%s"}\n'


def line(n, pad=40):
    return LINE % (n, "x" * pad)


def begun(path, **kw):
    out = Capture(str(path), **kw)
    out.open()
    out.begin()
    return out


def read_set(directory, name="cap.jsonl"):
    """{entry: text} of every file of the capture, decompressed."""
    out = {}
    for _, compressed, entry in rotation.members(name,
                                                 os.listdir(directory)):
        opener = gzip.open if compressed else open
        with opener(os.path.join(directory, entry), "rt") as f:
            out[entry] = f.read()
    return out


def test_lines_are_on_disk_at_each_flush_and_never_cut(tmp_path):
    path = tmp_path / "cap.jsonl"
    out = begun(path)
    out.write('{"kind":')
    out.flush()
    assert path.read_text() == ""           # half a line: nothing yet
    out.write('"sent"}\n{"kind":')
    out.flush()
    assert path.read_text() == '{"kind":"sent"}\n'
    # far more than Python's 8 KiB buffer, between two flushes: written as
    # it comes (every WRITE_EVERY pieces), in whole lines only
    want = ['{"kind":"sent"}', '{"kind":' + line(0)[:-1]] + [
        line(n)[:-1] for n in range(1, 5000)]
    for n in range(5000):
        out.write(line(n))
        if n in (0, capture.WRITE_EVERY - 2, capture.WRITE_EVERY, 4999):
            text = path.read_text()
            assert text.endswith("\n")
            assert text.splitlines() == want[:text.count("\n")]
    assert path.read_text().count("\n") > 5000 - capture.WRITE_EVERY
    out.write('"received"}\n')
    out.flush()
    text = path.read_text()
    assert text.count("\n") == 5002 and text.endswith("\n")
    out.close()


def test_lines_in_parts_go_out_at_a_lines_end_only(tmp_path):
    # JsonWriter writes a line in two pieces: past WRITE_EVERY pieces the
    # capture writes out at the end of the next line, never inside one
    # (a write error there would leave part of a line pending)
    path = tmp_path / "cap.jsonl"
    out = begun(path)
    for _ in range(capture.WRITE_EVERY + 1):
        out.write('{"kind":')
    assert path.read_text() == ""
    out.write('"sent"}\n')
    assert path.read_text().endswith('{"kind":"sent"}\n')
    out.close()


def test_an_existing_file_is_truncated_only_once_the_run_began(tmp_path):
    path = tmp_path / "cap.jsonl"
    path.write_text("earlier capture\n")
    os.chmod(path, 0o640)
    out = Capture(str(path))
    out.open()
    assert path.read_text() == "earlier capture\n"
    out.discard()                           # the tracer did not start
    assert path.read_text() == "earlier capture\n"
    out = begun(path)
    assert path.read_text() == ""
    out.write(line(1))
    out.close()
    assert path.read_text() == line(1)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_run_that_never_began_removes_the_file_it_made(tmp_path):
    out = Capture(str(tmp_path / "cap.jsonl"))
    out.open()
    assert os.listdir(tmp_path) == ["cap.jsonl"]
    out.discard()
    assert os.listdir(tmp_path) == []


def test_a_full_disk_leaves_whole_lines_and_counts_what_was_not_written(
        tmp_path, monkeypatch):
    """The disk fills in the middle of a batch: os.write takes part of it,
    then fails. The file is cut back to the last whole line and the error
    says how many lines read were not written."""
    path = tmp_path / "cap.jsonl"
    out = begun(path)
    out.write(line(0))
    out.flush()
    room = [300]                            # bytes left on the "disk"
    real_write = os.write

    def filling_write(fd, data):
        if room[0] == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, data[:room[0]])
        room[0] -= n
        return n
    monkeypatch.setattr(lines_module.os, "write", filling_write)
    for n in range(1, 11):
        out.write(line(n))
    with pytest.raises(OutputError) as e:
        out.flush()
    text = path.read_text()
    whole = text.count("\n")
    assert text.endswith("\n") and text == "".join(line(n)
                                                   for n in range(whole))
    assert 1 < whole < 11
    assert str(e.value) == (
        "cannot write %s (No space left on device; %d lines read not "
        "written, the lines before are whole): free space there, or choose "
        "another -o FILE" % (path, 11 - whole))
    out.discard()


def test_rotation_at_line_boundaries_past_size(tmp_path):
    limit = 1000
    out = begun(tmp_path / "cap.jsonl", rotate_bytes=limit)
    lines = [line(n, pad=n % 97) for n in range(300)]
    for n, text in enumerate(lines):
        out.write(text)
        if n % 13 == 0:
            out.flush()
    out.close()
    files = read_set(tmp_path)
    names = list(files)
    assert names[:3] == ["cap.jsonl", "cap.jsonl.1", "cap.jsonl.2"]
    assert names == [rotation.member("cap.jsonl", i)
                     for i in range(len(names))]
    assert "".join(files.values()) == "".join(lines)
    longest = max(len(t) for t in lines)
    for name in names[:-1]:
        text = files[name]
        assert text.endswith("\n")
        # past SIZE by less than one line: the line that got it there
        assert limit <= len(text) < limit + longest
        assert len(text) - len(text.rstrip("\n").rsplit("\n", 1)[-1]) - 1 \
            < limit
    assert len(files[names[-1]]) < limit + longest


def test_keep_at_most_count_files_and_compress_the_closed_ones(tmp_path):
    out = begun(tmp_path / "cap.jsonl", rotate_bytes=500, keep=3,
                compress=True)
    lines = [line(n) for n in range(200)]
    for n, text in enumerate(lines):
        out.write(text)
        out.flush()
        # the file being written is never compressed
        newest = max(rotation.members("cap.jsonl", os.listdir(tmp_path)))
        assert newest[1] is False
    out.close()
    entries = sorted(os.listdir(tmp_path), key=lambda e: rotation.parse(
        "cap.jsonl", e))
    last = rotation.parse("cap.jsonl", entries[-1])[0]
    assert last > 5
    assert entries == ["cap.jsonl.%d.gz" % (last - 2),
                       "cap.jsonl.%d.gz" % (last - 1), "cap.jsonl.%d" % last]
    kept = "".join(read_set(tmp_path).values())
    assert "".join(lines).endswith(kept) and kept.startswith("{")
    with gzip.open(str(tmp_path / entries[0])) as f:
        assert f.read().endswith(b"\n")


def test_rotated_files_take_the_mode_of_file(tmp_path):
    path = tmp_path / "cap.jsonl"
    path.write_text("")
    os.chmod(path, 0o600)
    out = begun(path, rotate_bytes=100, compress=True)
    for n in range(10):
        out.write(line(n))
        out.flush()
    out.close()
    modes = {e: stat.S_IMODE(os.stat(tmp_path / e).st_mode)
             for e in os.listdir(tmp_path)}
    assert len(modes) > 3 and set(modes.values()) == {0o600}, modes


def test_an_earlier_captures_numbered_files_go_when_the_run_begins(
        tmp_path):
    for entry in ("cap.jsonl", "cap.jsonl.1.gz", "cap.jsonl.2",
                  ".cap.jsonl.3.gz.0123abcd.rsttrace-partial",
                  "cap.jsonl.old", "cap.jsonl.1x", "other.jsonl.1"):
        (tmp_path / entry).write_text("earlier\n")
    warned = []
    out = Capture(str(tmp_path / "cap.jsonl"), warn=warned.append)
    out.open()
    assert len(os.listdir(tmp_path)) == 7 and warned == []
    out.begin()
    out.close()
    assert sorted(os.listdir(tmp_path)) == ["cap.jsonl", "cap.jsonl.1x",
                                            "cap.jsonl.old", "other.jsonl.1"]
    assert warned == ["removed 3 files of an earlier capture at %s "
                      "(cap.jsonl.1.gz, cap.jsonl.2, .cap.jsonl.3.gz."
                      "0123abcd.rsttrace-partial)" % (tmp_path / "cap.jsonl")]


def test_rotation_needs_a_regular_file():
    """A device (a terminal here) is written to as it is, never rotated,
    truncated or replaced."""
    master, slave = os.openpty()
    try:
        tty = os.ttyname(slave)
        with pytest.raises(RsttraceError) as e:
            Capture(tty, rotate_bytes=100).open()
        assert "-C rotates regular files, and %s is not one" % tty in \
            str(e.value)
        out = Capture(tty)
        out.open()
        out.begin()
        out.write("one line\n")
        out.close()
        assert os.read(master, 100) == b"one line\r\n"
        assert stat.S_ISCHR(os.stat(tty).st_mode)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("text,size", [
    ("1", 1000000), ("100", 100000000), ("512k", 524288), ("2M", 2 << 20),
    ("1g", 1 << 30), ("0", None), ("1.5", None), ("-1", None), ("k", None),
    ("10kb", None), ("", None)])
def test_size_is_read_like_tcpdump(text, size):
    assert rotation.size_bytes(text) == size


def report_of(paths, warnings):
    return summarise(load(paths, warnings.append), str(paths))


def test_report_reads_a_rotated_compressed_set_in_order(tmp_path):
    path = tmp_path / "cap.jsonl"
    out = begun(path, rotate_bytes=400, compress=True)
    for n in range(60):
        out.write('{"kind":"sent","cause":"no-listener","saddr":"10.0.0.1",'
                  '"sport":%d,"daddr":"10.0.0.2","dport":80}\n' % (1000 + n))
        out.flush()
    out.close()
    entries = os.listdir(tmp_path)
    assert len(entries) > 5 and sum(e.endswith(".gz") for e in entries) == \
        len(entries) - 1
    warnings = []
    rep = report_of(str(path), warnings)
    assert rep["events"] == 60 and warnings == []
    # a glob's order (cap.jsonl.10 before cap.jsonl.2), twice over: the
    # same set, each file once
    everything = sorted(str(tmp_path / e) for e in entries)
    assert report_of(everything + everything, warnings)["events"] == 60
    # -W removed FILE itself (and FILE.1): the set is found from FILE's
    # name all the same
    gone = 0
    for entry in ("cap.jsonl.gz", "cap.jsonl.1.gz"):
        with gzip.open(str(tmp_path / entry), "rt") as f:
            gone += f.read().count("\n")
        os.unlink(tmp_path / entry)
    assert report_of(str(path), warnings)["events"] == 60 - gone


def test_report_of_a_file_compressed_but_not_yet_removed_counts_it_once(
        tmp_path):
    rec = '{"kind":"sent","cause":"no-listener","sport":1}\n'
    (tmp_path / "cap.jsonl").write_text(rec)
    (tmp_path / "cap.jsonl.1").write_text(rec * 2)
    with gzip.open(str(tmp_path / "cap.jsonl.1.gz"), "wt") as f:
        f.write(rec * 2)
    (tmp_path / "cap.jsonl.2").write_text(rec * 4)
    assert report_of(str(tmp_path / "cap.jsonl"), [])["events"] == 7


def test_report_of_a_cut_gzip_file_reads_up_to_the_cut(tmp_path):
    rec = '{"kind":"sent","cause":"no-listener","sport":1}\n'
    data = gzip.compress((rec * 1000).encode())
    (tmp_path / "cap.jsonl.gz").write_bytes(data[:len(data) // 2])
    warnings = []
    rep = report_of(str(tmp_path / "cap.jsonl.gz"), warnings)
    assert 0 < rep["events"] < 1000
    assert any("ends before its gzip stream does" in w for w in warnings)
