"""Argument checks that fail before anything is loaded (no root needed)."""


from cli_runner import cli_runner
from rsttrace.cli import main


def _run(*args):
    return cli_runner().invoke(main, list(args))


def test_duration_must_be_positive():
    for bad in ("0", "-1"):
        r = _run("trace", "--duration", bad)
        assert r.exit_code == 2
        assert "must be above 0" in r.stderr


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
    assert r.stderr.startswith("rsttrace: error: ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_rotation_options_need_each_other():
    for args, words in ((["-W", "3"], "-W needs -C SIZE"),
                        (["--compress"], "--compress needs -C SIZE"),
                        (["-C", "10"], "-C needs -o FILE"),
                        (["-C", "10", "-o", "-"], "-C needs -o FILE")):
        r = _run("trace", *args)
        assert r.exit_code == 2, args
        assert r.stderr.startswith("rsttrace: error: %s" % words), r.stderr
        assert len(r.stderr.splitlines()) == 1


def test_rotation_size_is_tcpdumps():
    for bad in ("0", "1.5", "10kb", "-3"):
        r = _run("trace", "-o", "x", "-C", bad)
        assert r.exit_code == 2 and "is not a size" in r.stderr, bad
    r = _run("trace", "-o", "x", "-C", "5", "-W", "0")
    assert r.exit_code == 2
