"""The public pages as static files, for a CDN: `hapex site build OUT/`.

The security page says the public site is static HTML holding no customer data. It is rendered
here by the intake's own views and templates, through the intake app itself (nothing of the pages is
copied), with links between public pages kept inside the site and every other link (sign up, log in,
an account page) sent to the intake at INTAKE_PUBLIC_URL. The build refuses output a strict CDN
policy would break or that would load anything from elsewhere: a script, an inline style or event
handler, a link to a third party.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from markupsafe import Markup

from intake.config import IntakeConfig
from intake.pages import StaticSite
from shared.db import Database

# Each public page: its endpoint, the path it is served at on the site, and the file that serves it.
# Directory indexes, so that /security/ works on any static host (S3, GitHub Pages, Netlify, ...).
SITE_PAGES: tuple[tuple[str, str, str], ...] = (
    ("pages.index", "/", "index.html"),
    ("pages.security", "/security/", "security/index.html"),
    ("pages.data_and_privacy", "/data-and-privacy/", "data-and-privacy/index.html"),
    ("pages.privacy", "/privacy/", "privacy/index.html"),
    ("pages.terms", "/terms/", "terms/index.html"),
    ("pages.security_txt", "/.well-known/security.txt", ".well-known/security.txt"),
)
# The headers the intake sends with these pages, which the CDN must send too (a CSP in a <meta>
# cannot say frame-ancestors): written to _headers, the format Netlify and Cloudflare Pages read.
SITE_HEADERS = ("Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options",
                "X-Frame-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy", "Permissions-Policy")
# Every attribute a browser fetches, follows or pings (ping sends a POST to each URL it lists on a click).
_URL_ATTRIBUTES = {"href", "src", "action", "srcset", "formaction", "poster", "data", "ping", "xlink:href", "cite",
                   "background", "longdesc", "manifest", "icon", "lowsrc", "dynsrc", "codebase", "archive",
                   "itemtype", "profile"}


class SiteBuildError(RuntimeError):
    """The pages could not be rendered as a safe static site; the message says what and where."""


@dataclass(frozen=True)
class BuiltSite:
    out: Path
    files: tuple[str, ...]


def _legal_text(path: Path | None) -> Markup | None:
    """The operator's own privacy notice or terms: an HTML fragment, checked with the rest of the site."""
    if path is None:
        return None
    try:
        return Markup(path.read_text(encoding="utf-8"))  # noqa: S704 - the operator's own page, checked below
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteBuildError(f"{path}: cannot read it as UTF-8 text ({type(exc).__name__})") from None


def site_app(config: IntakeConfig, site: StaticSite) -> Flask:
    """The intake app, with URLs built for the static site: public pages inside it, the rest at the intake."""
    from intake import create_app

    if config.public_url is None:
        raise SiteBuildError("INTAKE_PUBLIC_URL must be set: sign-up and log-in links point there")
    intake_origin = config.public_url.rstrip("/")
    # Never opened: a public page that touched the database would fail the build, not hang it.
    app = create_app(config, database=Database("", name="hapex-site-build"))
    app.extensions["hapex_static_site"] = site
    site_paths = {endpoint: path for endpoint, path, _file in SITE_PAGES}
    intake_url_for = app.url_for

    def url_for(endpoint: str, **values: Any) -> str:
        # flask.url_for passes its _anchor, _external, ... options, None when unused.
        values = {k: v for k, v in values.items() if v is not None and k != "_external"}
        if endpoint == "static":
            return "/static/" + str(values["filename"])
        if endpoint in site_paths and not values:
            return site_paths[endpoint]
        return intake_origin + intake_url_for(endpoint, **values)

    # Flask's url_for (views) and the templates' both go through these two.
    app.url_for = url_for  # type: ignore[method-assign]  # the build's own URL map, for this app only
    app.jinja_env.globals["url_for"] = url_for
    return app


def build_site(config: IntakeConfig, out: Path, *, site_url: str | None = None, privacy: Path | None = None,
               terms: Path | None = None) -> BuiltSite:
    """Render every public page and its assets into `out`, check them, and return what was written."""
    if site_url is not None:
        parts = urlsplit(site_url)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise SiteBuildError("--site-url must be an https:// origin, like https://hapex.example")
    site = StaticSite(origin=site_url.rstrip("/") if site_url else None,
                      privacy=_legal_text(privacy), terms=_legal_text(terms))
    app = site_app(config, site)
    with tempfile.TemporaryDirectory(prefix="hapex-site-") as staging:
        # Rendered and checked aside first: a refused build leaves `out` as it was.
        written = _render(app, config, Path(staging))
        problems = site_problems(Path(staging), config.public_url or "", written)
        if problems:
            raise SiteBuildError("the site is not safe to publish: " + "; ".join(problems))
        shutil.copytree(staging, out, dirs_exist_ok=True)
    return BuiltSite(out, tuple(written))


def _render(app: Flask, config: IntakeConfig, out: Path) -> list[str]:
    written: list[str] = []
    headers: dict[str, str] = {}
    client = app.test_client()
    for endpoint, _path, file in SITE_PAGES:
        with app.test_request_context():
            served_at = Flask.url_for(app, endpoint)
        response = client.get(served_at, base_url=config.public_url)
        if response.status_code != 200:
            raise SiteBuildError(f"{served_at} answered {response.status_code} while rendering it")
        if response.headers.get("Set-Cookie"):
            raise SiteBuildError(f"{served_at} set a cookie: a static page cannot")
        target = out / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response.get_data())
        written.append(file)
        headers = {name: response.headers[name] for name in SITE_HEADERS if name in response.headers}
    (out / "static").mkdir(exist_ok=True)
    for asset in sorted(Path(app.static_folder or "").iterdir()):
        # Only what the pages use: no script belongs on a site that runs none (passkeys.js is the intake's).
        if asset.is_file() and asset.suffix != ".js":
            shutil.copyfile(asset, out / "static" / asset.name)
            written.append(f"static/{asset.name}")
    (out / "_headers").write_text("/*\n" + "".join(f"  {k}: {v}\n" for k, v in headers.items()), encoding="utf-8")
    written.append("_headers")
    return written


class _PageLinks(HTMLParser):
    """Every URL a page refers to, and what a strict static page may not contain."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.forbidden: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "iframe", "object", "embed", "base", "frame", "frameset", "applet", "portal"):
            self.forbidden.append(f"<{tag}>")
        if tag == "meta" and any(name == "http-equiv" and (value or "").strip().lower() == "refresh"
                                 for name, value in attrs):
            self.forbidden.append('<meta http-equiv="refresh"> (it sends the reader elsewhere)')
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.forbidden.append(f"{name}= on <{tag}>")
            elif name in _URL_ATTRIBUTES and value is not None:
                # ping, archive and srcset may list several URLs; each must land inside the site or the intake.
                self.urls += ([part.strip().split(" ")[0] for part in value.split(",") if part.strip()]
                              if name == "srcset" else value.split() if name in ("ping", "archive") else [value])


def site_problems(out: Path, intake_url: str, files: Iterable[str]) -> list[str]:
    """What would make the built site unsafe or broken: scripts, inline styles, third-party or dead links."""
    problems = []
    intake_origin = intake_url.rstrip("/") + "/"
    for file in files:
        if not file.endswith(".html"):
            continue
        page = _PageLinks()
        page.feed((out / file).read_text(encoding="utf-8"))
        problems += [f"{file}: {what}" for what in page.forbidden]
        for url in page.urls:
            if url.startswith(("#", "mailto:")) or url.startswith(intake_origin):
                continue
            if not url.startswith("/") or url.startswith("//"):
                problems.append(f"{file}: links outside the site and the intake: {url}")
            elif site_file(out, url) is None:
                problems.append(f"{file}: links to {url}, which the site does not have")
    return problems


def site_file(out: Path, url: str) -> Path | None:
    """The file a static host serves for a path on the site (a directory serves its index.html)."""
    path = urlsplit(url).path
    candidate = out / path.lstrip("/")
    if path.endswith("/"):
        candidate = candidate / "index.html"
    resolved = candidate.resolve()
    if not resolved.is_relative_to(out.resolve()) or not resolved.is_file():
        return None
    return resolved

