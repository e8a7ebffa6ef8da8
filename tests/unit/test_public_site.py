"""`hapex site build` writes the public pages as a static site a CDN can serve as it is.

Every page is there, nothing on it runs a script or loads from elsewhere, every link lands inside
the site or on the intake, and the data-and-privacy page lists exactly the catalog's scopes.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from hapex.cli import main
from shared.catalog import CATALOG

INTAKE = "https://app.hapex.example"
SITE = "https://hapex.example"
PAGES = ("index.html", "security/index.html", "data-and-privacy/index.html", "privacy/index.html",
         "terms/index.html", ".well-known/security.txt", "static/hapex.css", "static/favicon.svg", "_headers")
_URL = re.compile(r"""\b(?:href|src|action|srcset)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INTAKE_PUBLIC_URL", INTAKE)
        assert main(["site", "build", str(out), "--site-url", SITE]) == 0
    return out


def html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_every_public_page_and_asset_is_written(site):
    for page in PAGES:
        assert (site / page).is_file(), page
    assert len(html_pages(site)) == 5


def test_no_page_has_a_script_an_inline_style_or_handler(site):
    for page in html_pages(site):
        text = page.read_text().lower()
        assert "<script" not in text, page
        assert "<style" not in text and " style=" not in text, page
        assert not re.search(r"\son[a-z]+\s*=", text), page


def test_every_link_lands_inside_the_site_or_on_the_intake(site):
    seen_intake = set()
    for page in html_pages(site):
        for url in _URL.findall(page.read_text()):
            url = html.unescape(url)
            if url.startswith(("#", "mailto:")):
                continue
            if url.startswith(INTAKE + "/"):
                seen_intake.add(url.removeprefix(INTAKE))
                continue
            assert url.startswith("/") and not url.startswith("//"), f"{page}: {url}"
            target = site / url.lstrip("/").split("#")[0]
            if url.endswith("/"):
                target = target / "index.html"
            assert target.is_file(), f"{page} links to {url}, which is not in the site"
    # Signing up and logging in happen on the intake, never on the static site.
    assert {"/signup", "/login"} <= seen_intake


def test_the_data_and_privacy_page_lists_exactly_the_catalogs_scopes(site):
    text = (site / "data-and-privacy" / "index.html").read_text()
    listed = [html.unescape(name) for name in
              re.findall(r'<p class="scope-name">.*?<code>(.*?)</code></p>', text)]
    expected = [scope.name for provider in CATALOG.providers for scope in provider.scopes]
    assert expected and listed == expected


def test_security_txt_names_the_site_and_the_headers_carry_the_intakes_policy(site):
    text = (site / ".well-known" / "security.txt").read_text()
    assert f"Canonical: {SITE}/.well-known/security.txt\n" in text
    assert f"Policy: {SITE}/security/\n" in text
    headers = (site / "_headers").read_text()
    assert "Content-Security-Policy: default-src 'self';" in headers and "frame-ancestors 'none'" in headers


def test_an_operators_page_with_a_script_is_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    privacy = tmp_path / "privacy.html"
    privacy.write_text('<p>Our notice.</p><script src="https://tracker.example/t.js"></script>')
    out = tmp_path / "out"
    monkeypatch.setenv("INTAKE_PUBLIC_URL", INTAKE)
    assert main(["site", "build", str(out), "--privacy", str(privacy)]) == 1
    assert "<script>" in capsys.readouterr().err
    assert not out.exists()


def test_the_operators_terms_replace_the_placeholder(tmp_path, monkeypatch):
    terms = tmp_path / "terms.html"
    terms.write_text('<p>These terms bind <a href="/security/">our security</a>.</p>')
    monkeypatch.setenv("INTAKE_PUBLIC_URL", INTAKE)
    assert main(["site", "build", str(tmp_path / "out"), "--terms", str(terms)]) == 0
    page = (tmp_path / "out" / "terms" / "index.html").read_text()
    assert "These terms bind" in page and "To be published by the operator" not in page
    assert "To be published by the operator" in (tmp_path / "out" / "privacy" / "index.html").read_text()


def test_without_the_intakes_public_url_the_build_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("INTAKE_PUBLIC_URL", raising=False)
    assert main(["site", "build", str(tmp_path / "out")]) == 2
    assert "INTAKE_PUBLIC_URL must be set" in capsys.readouterr().err


def test_the_security_page_says_where_each_part_runs_and_what_makes_it_so(site):
    text = html.unescape((site / "security" / "index.html").read_text())
    assert "Where Hapex runs" in text
    for piece in ("hapex site build", "The intake's part of the deployment notes",
                  "The agent's and workers' part of the deployment notes", "The database part of the deployment notes"):
        assert piece in text
    # Built for an intake serving its own TLS, the page does not claim a balancer in front of it.
    assert "This web app serves HTTPS itself" in text and "travel unencrypted" not in text.split("agent service")[0]


def test_built_for_an_intake_behind_a_tls_balancer_the_page_states_the_trade_off(tmp_path, monkeypatch):
    monkeypatch.setenv("INTAKE_PUBLIC_URL", INTAKE)
    monkeypatch.setenv("TLS_TERMINATION", "proxy")
    assert main(["site", "build", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "security" / "index.html").read_text()
    assert "load balancer holds the" in text and "travel unencrypted" in text
    assert "This web app serves HTTPS itself" not in text


@pytest.mark.parametrize("fragment", [
    '<p><a href="/security/" ping="https://tracker.example/p">Our security</a></p>',
    '<meta http-equiv="refresh" content="0; url=https://tracker.example/">',
    '<svg><a xlink:href="https://tracker.example/">x</a></svg>',
    '<blockquote cite="https://tracker.example/q">Quoted.</blockquote>',
    '<table background="https://tracker.example/b.png"><tr><td>x</td></tr></table>',
], ids=["ping", "meta-refresh", "xlink-href", "cite", "background"])
def test_an_operators_page_that_sends_the_reader_or_a_ping_elsewhere_is_refused(tmp_path, monkeypatch, capsys,
                                                                                 fragment):
    terms = tmp_path / "terms.html"
    terms.write_text(f"<p>These terms.</p>{fragment}")
    out = tmp_path / "out"
    monkeypatch.setenv("INTAKE_PUBLIC_URL", INTAKE)
    assert main(["site", "build", str(out), "--terms", str(terms)]) == 1
    assert "terms/index.html" in capsys.readouterr().err
    assert not out.exists()


def test_no_script_file_is_copied_into_the_site(site: Path):
    assert not list(site.rglob("*.js")), "the site runs no script, so it carries none"
