"""Recognize scraped-page furniture (menus, share counters, widgets, comment forms) by pattern.

Rules look at whole lines, so a body sentence that merely mentions "subscribers" or "read more"
is never touched. The same module reads bylines ("Author:", "Source:", "Published:") because
those lines are page furniture too, but they are kept in the text and copied into metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import trafilatura
from lxml import etree
from lxml import html as lxml_html

_CRUMB = re.compile(r"(?:Home|Accueil|Inicio|Startseite|Inizio|Início)(?=[A-Z]|\s*[>»›/|])")
_ELLIPSIS = ("...", "…")
_SOCIAL_COUNTER = re.compile(
    r"\d[\d,.\s]*[KkMm]?\+?\s*"
    r"(?:Fans|Followers|Subscribers|Likes|Members|Shares|Views|Comments)"
    r"\s*(?:Like|Follow|Subscribe|Join|Share)?"
)
_SHARE_BUTTON = re.compile(
    r"(?:Like|Follow|Subscribe|Share|Tweet|Pin(?: it)?|Email|Print|WhatsApp|Facebook|Twitter"
    r"|LinkedIn|Telegram|Reddit|Copy link)",
    re.IGNORECASE,
)
# Widget headings and comment-form prompts; trailing ":" or "!" are ignored when matching.
_WIDGET = re.compile(
    r"(?:stay connected|must read|related (?:news|posts?|articles?|stories|content|topics)"
    r"|read more|read also|also read|see also|more (?:news|stories)|latest (?:news|posts)"
    r"|popular posts|most popular|trending(?: now)?|recommended(?: for you)?|you may also like"
    r"|you might also like|advertisement|advertising|sponsored(?: content)?|share this(?: \w+)?"
    r"|share(?: on)? (?:facebook|twitter|whatsapp)|follow us(?: on \w+)?|comments?"
    r"|(?:sign up|subscribe)(?: now)?(?: (?:to|for) (?:our|the) (?:\w+ )?newsletter)?"
    r"|newsletter|leave a (?:reply|comment)|cancel reply|post comment|add a comment"
    r"|please enter your (?:comment|name here|name|email address here|email)"
    r"|you have entered an incorrect email address"
    r"|save my name, email,? and website in this browser for the next time i comment\.?)",
    re.IGNORECASE,
)
_RELATED_LINK = re.compile(r"(?:read more|read also|also read|see also)\s*[:»›>|-].{0,120}", re.I)
_DATE_STAMP_END = re.compile(r".*\s[–—-]\s*\d{1,2}/\d{1,2}(?:/\d{2,4})?")
_DURATION = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_FOOTER_SHORT = 80
_SENTENCE_END = (".", "?", "!", '"', "”", "’", ")")
_PAGE_FURNITURE = ["//nav", "//footer", "//aside"]  # not <form>: ASP.NET wraps whole pages in one
_UNWANTED_HTML = "|".join(["//script", "//style", "//noscript", "//template", *_PAGE_FURNITURE])
# Characters lxml parses but refuses to set as element text (C0 controls but tab, LF, CR; U+FFFE/F).
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_BLOCK_TAGS = frozenset("p div h1 h2 h3 h4 h5 h6 li blockquote pre br tr td th dd dt section article".split())

_MONTHS = "january february march april may june july august september october november december".split()
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
_DATE_PATTERNS = (
    re.compile(r"\b(?P<year>\d{4})-(?P<mnum>\d{2})-(?P<day>\d{2})\b"),
    re.compile(_MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})\b"),
    re.compile(r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r",?\s+(?P<year>\d{4})\b"),
)
_AUTHOR = re.compile(r"(?:Author|Authors|Written by|Byline)\s*:\s*(?P<v>.+)|By\s+(?P<by>.+)", re.I)
_BY_NAME = re.compile(r"[A-Z][\w.'-]*(?:\s+(?:[A-Z][\w.'-]*|and|with|de|van|von|&))+")
_SOURCE = re.compile(r"(?:Source|Sources|Via)\s*:\s*(?P<v>.+)", re.IGNORECASE)
_PUBLISHED = re.compile(
    r"(?:Published|Posted|Date|Updated|Last updated)(?:\s+on)?\s*[:\-]?\s*(?P<v>.+)", re.I
)
_DATELINE = re.compile(r"[A-Z][A-Z .'-]{1,40},\s+(?P<v>.{6,40})")


@dataclass(frozen=True)
class Byline:
    """Metadata stated in the text itself; None where the text does not say."""

    author: str | None = None
    source: str | None = None
    published: str | None = None  # ISO date, YYYY-MM-DD


def _norm(line: str) -> str:
    return line.strip().rstrip(":!").strip()


def is_junk_line(line: str) -> bool:
    """True for a whole line of page furniture: counters, share buttons, widget headings."""
    text = _norm(line)
    if not text or is_byline(line):
        return False
    return bool(
        _SOCIAL_COUNTER.fullmatch(text)
        or _SHARE_BUTTON.fullmatch(text)
        or _WIDGET.fullmatch(text)
        or _RELATED_LINK.fullmatch(text)
    )


def is_byline(line: str) -> bool:
    """True for an "Author:", "By Jane Doe", "Source:" or "Published:" line (always kept)."""
    text = line.strip()
    if len(text) > 120:
        return False
    m = _AUTHOR.fullmatch(text)
    if m and (m["v"] or _BY_NAME.fullmatch(m["by"] or "")):
        return True
    if _SOURCE.fullmatch(text):
        return True
    m = _PUBLISHED.fullmatch(text)
    return bool(m and parse_date(m["v"]))


def _is_crumb_or_truncated(line: str, later: Sequence[str]) -> bool:
    """A breadcrumb glued to a title ("HomeWorldSyria..."), or a cut-off copy of a later line."""
    if _CRUMB.match(line):
        return True
    if not line.endswith(_ELLIPSIS):
        return False
    head = line.removesuffix("...").removesuffix("…").rstrip()
    starts = [i for i in range(len(head)) if i == 0 or head[i - 1] == " " or head[i].isupper()]
    return any(
        len(other) > len(head) - i >= min(20, len(other)) and other.startswith(head[i:])
        for other in later
        for i in starts
    )


def _footer_like(line: str) -> bool:
    if not line:
        return True
    if is_byline(line):
        return False
    return is_junk_line(line) or (len(line) <= _FOOTER_SHORT and not line.endswith(_SENTENCE_END))


def keep_mask(lines: Sequence[str]) -> list[bool]:
    """Keep flags for stripped `lines`; blank lines are returned as kept (they mark paragraphs).

    >>> keep_mask(["Storm hits coast", "", "Rain fell.", "Share this", "16,985FansLike"])
    [True, True, True, False, False]
    """
    keep = [not is_junk_line(line) for line in lines]
    nonblank = [i for i, line in enumerate(lines) if line]
    # Video widget: "Some show title – 01/14" followed by a duration-only line ("10:45").
    for a, b in zip(nonblank, nonblank[1:], strict=False):
        if _DATE_STAMP_END.fullmatch(lines[a]) and _DURATION.fullmatch(lines[b]):
            keep[a] = keep[b] = False
    # Leading breadcrumb / truncated-title lines, before the first real line.
    for n, i in enumerate(nonblank):
        if not keep[i]:
            continue
        later = [lines[j] for j in nonblank[n + 1 : n + 4]]
        if not _is_crumb_or_truncated(lines[i], later):
            break
        keep[i] = False
    # Footer: from a widget/comment-form marker on, when only short furniture-like lines follow.
    kept_text = [i for i in nonblank if keep[i]]
    for n, i in enumerate(nonblank):
        if kept_text and i <= kept_text[0]:
            continue
        if _WIDGET.fullmatch(_norm(lines[i])) and all(_footer_like(lines[j]) for j in nonblank[n:]):
            for j in nonblank[n:]:
                keep[j] = False
            break
    return keep


def _month_number(word: str) -> int | None:
    word = word.lower()
    return next((n for n, name in enumerate(_MONTHS, 1) if name.startswith(word)), None)


def parse_date(text: str, *, at_start: bool = False) -> str | None:
    """The first valid calendar date stated in `text`, as ISO YYYY-MM-DD; None if there is none.

    >>> parse_date("Published: Oct. 22, 2024 10:45")
    '2024-10-22'
    """
    for pattern in _DATE_PATTERNS:
        found = [pattern.match(text)] if at_start else pattern.finditer(text)
        for m in found:
            if m is None:
                continue
            g = m.groupdict()
            month = int(g["mnum"]) if g.get("mnum") else _month_number(g["month"])
            try:
                if month is not None:
                    return date(int(g["year"]), month, int(g["day"])).isoformat()
            except ValueError:
                continue
    return None


def read_byline(lines: Sequence[str]) -> Byline:
    """Author, source and date stated in the kept non-blank `lines` (title first).

    A "Published:"/"Posted:" line wins over "Updated:", which wins over a dateline that opens the
    first body line ("LONDON, 22 October 2024 - ..." or a bare date line).
    """
    author = source = published = updated = None
    for line in lines:
        if not is_byline(line):
            continue
        text = line.strip()
        m = _AUTHOR.fullmatch(text)
        if m and author is None:
            author = (m["v"] or m["by"]).strip()
        m = _SOURCE.fullmatch(text)
        if m and source is None:
            source = m["v"].strip()
        m = _PUBLISHED.fullmatch(text)
        if m:
            stated = parse_date(m["v"])
            if text.lower().startswith(("updated", "last updated")):
                updated = updated or stated
            else:
                published = published or stated
    if published is None and updated is None and len(lines) > 1:
        m = _DATELINE.match(lines[1])
        published = parse_date(m["v"] if m else lines[1], at_start=True)
    return Byline(author=author, source=source, published=published or updated)


@dataclass(frozen=True)
class HtmlPage:
    """The main text of a web page: title, body paragraphs (furniture removed), byline."""

    title: str
    body: tuple[str, ...]
    byline: Byline
    used_fallback: bool  # trafilatura found nothing; text is every visible line (lxml)
    title_in_body: bool  # the title was the first body line (the page has visible text)


def _html_root(raw: str) -> lxml_html.HtmlElement | None:
    try:
        return lxml_html.document_fromstring(
            _XML_UNSAFE.sub(" ", raw).encode("utf-8", "replace"),
            parser=lxml_html.HTMLParser(encoding="utf-8"),
        )
    except (etree.ParserError, ValueError):  # an empty or markup-free document
        return None


def _visible_lines(root: lxml_html.HtmlElement) -> list[str]:
    """Every visible text line once scripts, styles and navigation are dropped (the fallback)."""
    for element in root.xpath(_UNWANTED_HTML):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag in _BLOCK_TAGS:
            element.tail = "\n" + (element.tail or "")
            element.text = "\n" + (element.text or "")
    body = root.find("body")
    return [] if body is None else body.text_content().splitlines()


def _html_title(root: lxml_html.HtmlElement) -> str:
    for found in (root.findtext(".//title"), *(h.text_content() for h in root.iter("h1"))):
        if found and found.strip():
            return found
    return ""


def extract_html(raw: str) -> HtmlPage:
    """Main text and metadata of a page via trafilatura, falling back to plain lxml text.

    trafilatura is handed the markup as a string, never a URL, so it never touches the network.
    Paragraphs come out whitespace-collapsed; the title is not repeated as the first paragraph.
    """
    page = trafilatura.bare_extraction(
        raw,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
        prune_xpath=_PAGE_FURNITURE,  # else its fallback extractors can return the menu
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if isinstance(page, dict):  # only with as_dict=True, which is not asked for
        raise TypeError("trafilatura returned a dict")
    root = _html_root(raw)
    title = (page.title if page else None) or (_html_title(root) if root is not None else "")
    title = " ".join(title.split())
    used_fallback = page is None or not (page.text or "").strip()
    if page is not None and not used_fallback:
        lines = (page.text or "").splitlines()
    else:
        lines = _visible_lines(root) if root is not None else []
    lines = [" ".join(line.split()) for line in lines]
    body = [line for line, kept in zip(lines, keep_mask(lines), strict=True) if line and kept]
    title_in_body = bool(body) and (not title or body[0].casefold() == title.casefold())
    if title_in_body:
        title = body.pop(0)
    stated = read_byline([title, *body])
    byline = Byline(
        author=(page.author if page else None) or stated.author,
        source=(page.sitename if page else None) or stated.source,
        published=parse_date(page.date or "") if page and page.date else stated.published,
    )
    return HtmlPage(title, tuple(body), byline, used_fallback, title_in_body)
