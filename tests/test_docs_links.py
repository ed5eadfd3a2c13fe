"""Every link in the README and the documentation resolves inside the repository.

Airseal is read where there is no network: a link to a web page is a dead end there, so the
README and ``docs/`` link nothing outside the repository, every relative link names a file or
folder that exists in it (without climbing out of it), and every ``#anchor`` names a heading of
the Markdown file it points to, with GitHub's heading ids.

Links are found by parsing the Markdown with markdown-it-py (CommonMark, already installed with
rich), so links inside code blocks and code spans are not links, and reference-style links,
autolinks, images and raw HTML ``href``/``src`` attributes all are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    [REPO / "README.md", REPO / "agent/data/README.md", *(REPO / "docs").rglob("*.md")]
)
_HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_MARKDOWN = MarkdownIt("commonmark")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str


def heading_id(text: str) -> str:
    """GitHub's id for a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces
    to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def _inline_text(token: Token) -> str:
    return "".join(
        child.content for child in token.children or () if child.type in ("text", "code_inline")
    )


def anchors(text: str) -> set[str]:
    """The ids of every heading in a Markdown text (duplicates numbered as GitHub does)."""
    tokens = _MARKDOWN.parse(text)
    found: set[str] = set()
    counts: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        base = heading_id(_inline_text(tokens[i + 1]))
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(source: Path, text: str) -> list[Link]:
    """Every link target in a Markdown text, with the line it starts on."""
    found: list[Link] = []
    for token in _MARKDOWN.parse(text):
        line = (token.map[0] + 1) if token.map else 0
        if token.type in ("html_block",):
            found += [Link(source, line, m) for m in _HTML_LINK.findall(token.content)]
        for child in token.children or ():
            if child.type == "link_open":
                found.append(Link(source, line, str(child.attrs.get("href", ""))))
            elif child.type == "image":
                found.append(Link(source, line, str(child.attrs.get("src", ""))))
            elif child.type == "html_inline":
                found += [Link(source, line, m) for m in _HTML_LINK.findall(child.content)]
    return found


def link_problem(link: Link, repo: Path = REPO) -> str | None:
    """Why ``link`` does not resolve inside ``repo``, or ``None``."""
    target = link.target
    if not target:
        return "empty link"
    if _SCHEME.match(target) or target.startswith("//"):
        return "points outside the repository"
    path_part, _, anchor = target.partition("#")
    path_part = unquote(path_part)
    destination = (link.source.parent / path_part).resolve() if path_part else link.source
    try:
        destination.relative_to(repo.resolve())
    except ValueError:
        return "climbs out of the repository"
    if not destination.exists():
        return f"{destination.relative_to(repo.resolve())} does not exist"
    if anchor:
        if destination.is_dir() or destination.suffix != ".md":
            return f"an anchor into {destination.name}, which is not a Markdown file"
        if unquote(anchor) not in anchors(destination.read_text(encoding="utf-8")):
            return f"no heading with the id #{anchor} in {destination.name}"
    return None


def test_the_documents_exist() -> None:
    names = {p.relative_to(REPO).as_posix() for p in DOCUMENTS}
    for expected in (
        "README.md",
        "docs/README.md",
        "docs/design.md",
        "docs/media-format.md",
        "docs/threat-model.md",
        "docs/operator-guide.md",
        "docs/courier-guide.md",
        "docs/endpoint-guide.md",
        "docs/json.md",
    ):
        assert expected in names
    assert (REPO / "LICENSE").read_text(encoding="utf-8").count("Apache License") >= 1


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_link_resolves_inside_the_repository(document: Path) -> None:
    found = links(document, document.read_text(encoding="utf-8"))
    problems = [
        f"{link.source.relative_to(REPO)}:{link.line}: {link.target}: {problem}"
        for link in found
        if (problem := link_problem(link)) is not None
    ]
    assert not problems, "\n".join(problems)


def test_the_readme_links_the_documentation() -> None:
    targets = {link.target for link in links(REPO / "README.md", (REPO / "README.md").read_text())}
    assert {"docs/README.md", "docs/media-format.md", "docs/threat-model.md", "LICENSE"} <= targets


def test_docs_index_links_every_document() -> None:
    index = REPO / "docs" / "README.md"
    targets = {unquote(link.target.partition("#")[0]) for link in links(index, index.read_text())}
    for document in (REPO / "docs").rglob("*.md"):
        if document != index:
            assert document.relative_to(index.parent).as_posix() in targets, document.name


# -- the checker itself: each kind of bad link is caught ----------------------------------------


def _problems(tmp_path: Path, text: str) -> list[str | None]:
    (tmp_path / "docs").mkdir(exist_ok=True)
    other = "# A heading: with `code`\n\n## Twice\n\n## Twice\n"
    (tmp_path / "docs" / "other.md").write_text(other)
    (tmp_path / "file.txt").write_text("x")
    source = tmp_path / "docs" / "page.md"
    source.write_text(text)
    return [link_problem(link, tmp_path) for link in links(source, text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[ok](other.md#a-heading-with-code)", None),
        ("[ok](other.md#twice-1)", None),
        ("[ok](../file.txt)", None),
        ("[ok](.)", None),
        ("# Here\n\n[ok](#here)", None),
        ("[web](https://example.com)", "points outside the repository"),
        ("<http://example.com/spec>", "points outside the repository"),
        ("[ref][r]\n\n[r]: https://example.com", "points outside the repository"),
        ('<a href="ftp://example.com">x</a>', "points outside the repository"),
        ("[mail](mailto:a@example.com)", "points outside the repository"),
        ("[proto](//example.com/x)", "points outside the repository"),
        ("[up](../../etc/passwd)", "climbs out of the repository"),
        ("[gone](missing.md)", "docs/missing.md does not exist"),
        ("[anchor](other.md#nowhere)", "no heading with the id #nowhere in other.md"),
        ("[anchor](other.md#twice-2)", "no heading with the id #twice-2 in other.md"),
        ("[anchor](../file.txt#x)", "an anchor into file.txt, which is not a Markdown file"),
        ("![img](pic.png)", "docs/pic.png does not exist"),
    ],
)
def test_the_checker_catches_each_kind_of_bad_link(
    tmp_path: Path, text: str, expected: str | None
) -> None:
    assert _problems(tmp_path, text) == [expected]


def test_links_in_code_are_not_links(tmp_path: Path) -> None:
    text = "`[x](https://example.com)`\n\n```\n[y](https://example.com)\n```\n"
    assert _problems(tmp_path, text) == []
