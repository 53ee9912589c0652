"""The documentation stays usable: a short README, links that resolve, and an error table that names every error class.

README.md is the front door (at most 150 lines); the manual lives in docs/ and the measured figures in
benchmarks/README.md. Every relative markdown link in those files must point at a file or folder of the
repository, and an #anchor into a markdown file must match one of its headings (GitHub's slug rules). The
error table in docs/operations.md must have a row for every error class the library defines, found by
scanning layers/common/snaplake/ recursively with `ast`, so it keeps up as errors are added or moved.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
OPERATIONS = DOCS / "operations.md"
LIBRARY = ROOT / "layers" / "common" / "snaplake"
README_MAX_LINES = 150

PACKAGES = (
    "snaplake.core",
    "snaplake.rds",
    "snaplake.dynamodb",
    "snaplake.streams",
    "snaplake.catalog",
    "snaplake.athena",
    "snaplake_local",
)
ROOT_ERROR = "SnaplakeError"

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
TABLE_ROW_NAME = re.compile(r"^\|\s*`([A-Za-z_][A-Za-z0-9_]*)`")
EXTERNAL = ("http://", "https://", "mailto:")


def markdown_files() -> list[Path]:
    files = [README, ROOT / "benchmarks" / "README.md", *sorted(DOCS.rglob("*.md"))]
    return [path for path in files if path.is_file()]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a link or heading in a code block is just text)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def links(path: Path) -> list[str]:
    found: list[str] = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        found.extend(match.group(1) for match in LINK.finditer(INLINE_CODE.sub("", line)))
    return found


def github_slug(heading: str) -> str:
    """GitHub's heading anchor: markup dropped, lower-cased, punctuation other than '-' and '_' removed, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps only its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor, with GitHub's -1, -2 ... suffixes for repeated headings."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def link_problem(source: Path, target: str) -> str | None:
    """Why a link does not resolve, or None when it does."""
    if target.lower().startswith(EXTERNAL):
        return None
    location, _, anchor = target.partition("#")
    resolved = (source.parent / location).resolve() if location else source
    if not resolved.exists():
        return f"{target}: {resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved} does not exist"
    if not resolved.is_relative_to(ROOT):
        return f"{target}: points outside the repository"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{target}: no heading in {resolved.relative_to(ROOT)} has the anchor #{anchor}"
    return None


def base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def error_classes(library: Path) -> set[str]:
    """Public error classes defined under `library`: SnaplakeError and its subclasses (by name, transitively,
    across files), and classes whose base's name ends in "Error"."""
    bases_of: dict[str, set[str]] = {}
    for path in sorted(library.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases_of.setdefault(node.name, set()).update(base_names(node))
    errors = {name for name in bases_of if name == ROOT_ERROR}
    errors |= {name for name, bases in bases_of.items() if any(base.endswith("Error") for base in bases)}
    while True:
        more = {name for name, bases in bases_of.items() if bases & errors} - errors
        if not more:
            return errors
        errors |= more


def test_readme_is_a_front_door_of_at_most_150_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_there_are_markdown_files_with_links_to_check() -> None:
    files = markdown_files()
    assert README in files and OPERATIONS in files
    assert links(README), "README.md links to nothing"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    problems = [problem for target in links(path) if (problem := link_problem(path, target))]
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_link_checker_reports_missing_files_and_anchors(tmp_path: Path) -> None:
    page = DOCS / "operations.md"
    assert link_problem(page, "security.md") is None
    assert link_problem(page, "#error-table") is None
    assert link_problem(page, "https://example.com/nowhere.md") is None
    assert link_problem(page, "no-such-page.md") is not None
    assert link_problem(page, "security.md#no-such-heading") is not None
    sample = tmp_path / "sample.md"
    sample.write_text("# `_SUCCESS` last, then: done!\n## Notes\n## Notes\n```\n# not a heading\n[x](nowhere.md)\n```\n")
    assert anchors(sample) == {"_success-last-then-done", "notes", "notes-1"}
    assert links(sample) == []


def test_readme_names_the_setup_commands_and_every_package() -> None:
    text = README.read_text(encoding="utf-8")
    for command in ("make demo", "make test"):
        assert command in text, f"README.md does not show `{command}`"
    missing = [package for package in PACKAGES if package not in text]
    assert not missing, f"README.md's repository layout does not name {missing}"


def test_every_docs_page_is_listed_in_the_docs_index() -> None:
    index = DOCS / "README.md"
    listed = {(index.parent / target.partition("#")[0]).resolve() for target in links(index)}
    pages = {path.resolve() for path in DOCS.rglob("*.md") if path != index}
    unlisted = sorted(str(page.relative_to(ROOT)) for page in pages - listed)
    assert not unlisted, f"docs/README.md does not link to {unlisted}"


def test_the_scan_finds_the_error_classes() -> None:
    found = error_classes(LIBRARY)
    assert ROOT_ERROR in found
    assert len(found) > 10, f"only {sorted(found)}: is the scan broken?"


def test_error_scan_follows_subclasses_across_files(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "errors.py").write_text("class SnaplakeError(Exception): ...\nclass _Hidden(SnaplakeError): ...\n")
    (tmp_path / "pipe.py").write_text(
        "from core import errors\nclass Base(errors.SnaplakeError): ...\nclass Leaf(Base): ...\n"
        "class Odd(ValueError): ...\nclass OddLeaf(Odd): ...\nclass Plain: ...\n"
    )
    assert error_classes(tmp_path) == {"SnaplakeError", "Base", "Leaf", "Odd", "OddLeaf"}


def test_error_table_has_a_row_for_every_error_class() -> None:
    rows = {match.group(1) for line in prose_lines(OPERATIONS.read_text(encoding="utf-8")) if (match := TABLE_ROW_NAME.match(line.strip()))}
    missing = sorted(error_classes(LIBRARY) - rows)
    assert not missing, f"docs/operations.md's error table has no row (| `Name` | ...) for {missing}"


def test_security_docs_name_every_action_granted_on_resource_star() -> None:
    """docs/security.md's `Resource: "*"` table must be complete: each action an Allow grants on "*" in template.yaml
    (key policies aside: their "*" means the key itself; the vended-log `logs:` actions are one row) appears in it."""
    from tests.template._support import as_list, policy_statements, template

    section = (DOCS / "security.md").read_text().split('## `Resource: "*"` statements', 1)[1].split("\n## ", 1)[0]
    missing = set()
    for found in policy_statements(template()):
        statement = found.statement
        if statement.get("Effect") != "Allow" or statement.get("Resource") != "*" or "KeyPolicy" in found.where:
            continue
        for action in as_list(statement.get("Action")):
            if isinstance(action, str) and f"`{action}`" not in section and not action.startswith("logs:"):
                missing.add(f"{found.where}: {action}")
    assert not missing, 'docs/security.md does not explain these Resource: "*" grants:\n' + "\n".join(sorted(missing))
