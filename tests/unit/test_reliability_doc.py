"""docs/reliability.md is tests/reliability.py rendered, and every test the
table names exists (so the document cannot claim a test that is gone)."""

import os
import re

import reliability

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def test_the_document_is_the_table():
    with open(os.path.join(REPO, "docs", "reliability.md")) as f:
        assert f.read() == reliability.render(), (
            "docs/reliability.md is out of date: .venv/bin/python "
            "tests/reliability.py > docs/reliability.md")


def test_every_test_named_exists():
    named = [t for f in reliability.FAULTS for t in f.tests]
    named += [reliability.FUZZ_TEST] + list(reliability.HAND_WRITTEN)
    assert len(named) > 10
    for ref in named:
        path, _, func = ref.partition("::")
        with open(os.path.join(REPO, path)) as f:
            text = f.read()
        if func:
            assert re.search(r"^def %s\(" % re.escape(func), text, re.M), ref


def test_every_fuzz_kind_is_run():
    with open(os.path.join(REPO, reliability.FUZZ_TEST)) as f:
        text = f.read()
    for kind in reliability.FUZZ:
        assert text.count('"%s"' % kind) == 2, kind   # settled() and run()
