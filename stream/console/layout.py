"""The console's pages: one layout (``pages/layout.html``) around each page's ``<main>``.

A page is static HTML; its data comes from the JSON API through its script, so rendering is
filling in the layout once per process. Every page but the login also gets the top bar and
the critical-alarm banner (``pages/chrome.html``), which ``common.js`` fills.

>>> html = render("alerts")
>>> "<title>Live alerts · vitalstream</title>" in html and 'id="critical-banner"' in html
True
>>> 'id="critical-banner"' in render("login")
False
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from string import Template

PAGES_DIR = Path(__file__).resolve().parent / "pages"


@dataclass(frozen=True)
class Page:
    title: str
    scripts: tuple[str, ...]  # under /static, in order (deferred: they run in this order)
    styles: tuple[str, ...] = ()
    chrome: bool = True  # the top bar and the critical-alarm banner
    body_class: str = ""


CHARTS = ("vendor/uPlot.iife.min.js",)

PAGES: dict[str, Page] = {
    "alerts": Page("Live alerts", ("common.js", "alerts.js")),
    "ward": Page("Ward", ("common.js", "ward.js")),
    "history": Page("History", ("common.js", "history.js")),
    "patient": Page("Patient", (*CHARTS, "common.js", "profile.js", "patient.js"),
                     ("vendor/uPlot.min.css",)),
    "login": Page("Sign in", ("login.js",), chrome=False, body_class="login-body"),
}


def _read(name: str) -> str:
    return (PAGES_DIR / name).read_text(encoding="utf-8")


@cache
def render(name: str) -> str:
    """The whole HTML document of page ``name`` (a key of ``PAGES``)."""
    p = PAGES[name]
    head = [f'  <link rel="stylesheet" href="/static/{escape(s)}">' for s in p.styles]
    head += [f'  <script src="/static/{escape(s)}" defer></script>' for s in p.scripts]
    return Template(_read("layout.html")).substitute(
        title=escape(p.title), page=escape(name), head="\n".join(head),
        body_class=f' class="{escape(p.body_class)}"' if p.body_class else "",
        chrome=_read("chrome.html").rstrip("\n") if p.chrome else "",
        main=_read(f"{name}.html").rstrip("\n"))
