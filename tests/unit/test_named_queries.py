"""Named SQL blocks parse into a dict; malformed files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.db.queries import QuerySet, parse_queries

REPO = Path(__file__).resolve().parents[2]


def test_blocks_parse_by_name_without_their_description():
    queries = parse_queries("-- one --\n-- The first.\nSELECT 1\n\n-- two --\n-- The second.\nSELECT %(x)s\n")
    assert queries == {"one": "SELECT 1", "two": "SELECT %(x)s"}


def test_a_block_without_a_description_is_refused():
    with pytest.raises(ValueError, match="description"):
        parse_queries("-- one --\nSELECT 1\n")


def test_a_name_defined_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- one --\n-- a\nSELECT 1\n-- one --\n-- b\nSELECT 2\n")


def test_every_query_file_in_the_project_parses():
    files = [p for p in REPO.glob("*/**/queries.sql") if ".venv" not in p.parts]
    assert files
    for path in files:
        assert QuerySet(path).names(), path
