"""Reading JSON lines back (rsttrace.output.records): every error line in
full, blank lines, the cut last line."""

import pytest

from rsttrace.errors import RsttraceError
from rsttrace.output.records import read

WHAT = "`rsttrace trace --json`"
FIX = "give a file written by `rsttrace trace --json`"


def read_bytes(tmp_path, data, warnings=None):
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    return read(str(path), WHAT, (warnings if warnings is not None
                                  else []).append), str(path)


def error(tmp_path, data):
    with pytest.raises(RsttraceError) as e:
        read_bytes(tmp_path, data)
    return str(e.value), str(tmp_path / "f.jsonl")


def test_objects_with_line_numbers_blank_lines_skipped(tmp_path):
    (out, _) = read_bytes(tmp_path, b'{"a": 1}\n\n  \n{"b": 2}\n')
    assert out == [(1, {"a": 1}), (4, {"b": 2})]


def test_missing_file_line(tmp_path):
    with pytest.raises(RsttraceError) as e:
        read(str(tmp_path / "none"), WHAT, lambda m: None)
    assert str(e.value) == ("cannot read %s (No such file or directory): "
                            "check the path" % (tmp_path / "none"))


def test_not_text_line(tmp_path):
    msg, path = error(tmp_path, b'{"a": 1}\n\xff\xfe\n')
    assert msg == "%s line 2 is not text (a binary file?): %s" % (path, FIX)


def test_not_json_line(tmp_path):
    msg, path = error(tmp_path, b'{"a": 1}\nnope\n{"b": 2}\n')
    assert msg == "%s line 2 is not JSON: %s" % (path, FIX)


def test_not_json_in_the_middle_even_without_final_newline(tmp_path):
    msg, path = error(tmp_path, b'nope\n{"b": 2}')
    assert msg == "%s line 1 is not JSON: %s" % (path, FIX)


def test_not_an_object_line(tmp_path):
    msg, path = error(tmp_path, b'{"a": 1}\n[1, 2]\n')
    assert msg == "%s line 2 is not a JSON object: %s" % (path, FIX)


def test_cut_last_line_warned_and_skipped(tmp_path):
    warnings = []
    out, path = read_bytes(tmp_path, b'{"a": 1}\n{"b": 2}\n{"c": ', warnings)
    assert out == [(1, {"a": 1}), (2, {"b": 2})]
    assert warnings == ["%s: its last line is cut off (the writer was "
                        "killed mid-line?), skipped" % path]


def test_bad_last_line_with_newline_is_an_error(tmp_path):
    msg, path = error(tmp_path, b'{"a": 1}\n{"c": \n')
    assert msg == "%s line 2 is not JSON: %s" % (path, FIX)


def test_complete_last_line_without_newline(tmp_path):
    warnings = []
    out, _ = read_bytes(tmp_path, b'{"a": 1}\n{"b": 2}', warnings)
    assert out == [(1, {"a": 1}), (2, {"b": 2})] and warnings == []
