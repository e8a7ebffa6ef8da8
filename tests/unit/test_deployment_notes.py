"""deploy/README.md keeps its promises about database URLs and the parts it describes."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[2]
NOTES = (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
_DSN = re.compile(r"postgres(?:ql)?://[^\s`'\"]+")


def test_every_database_url_in_the_notes_verifies_the_servers_certificate_and_name():
    urls = _DSN.findall(NOTES)
    assert len(urls) >= 4
    for url in urls:
        query = parse_qs(urlsplit(url).query)
        assert query.get("sslmode") == ["verify-full"], url
        assert query.get("sslrootcert"), url


def test_the_notes_have_a_section_for_each_part_the_security_page_points_at():
    for section in ("## The public site", "## The intake", "## The agent API and workers",
                    "## Behind a TLS-terminating load balancer", "## A managed PostgreSQL",
                    "## Pools on platforms that start and stop instances", "## Rotating each secret"):
        assert f"\n{section}\n" in NOTES, section
