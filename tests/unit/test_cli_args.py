"""Argument checks that fail before anything is loaded (no root needed)."""

from click.testing import CliRunner

from rsttrace.cli import main


def _run(*args):
    return CliRunner().invoke(main, list(args))


def test_duration_must_be_positive():
    for bad in ("0", "-1"):
        r = _run("trace", "--duration", bad)
        assert r.exit_code == 2
        assert "must be above 0" in r.output


def test_version():
    r = _run("--version")
    assert r.exit_code == 0 and "rsttrace, version" in r.output


def test_matrix_needs_results():
    r = _run("matrix")
    assert r.exit_code == 2


def test_matrix_bad_file_one_line_error(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text("not json\n")
    r = _run("matrix", str(f))
    assert r.exit_code == 1
    assert r.output.startswith("rsttrace: error: ")
    assert len(r.output.strip().splitlines()) == 1
