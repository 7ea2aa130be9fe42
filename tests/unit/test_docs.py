"""The documentation stays short, true to the tree, and free of history."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 150


def _missing_paths(text: str) -> list[str]:
    """Repository paths quoted in backticks (`tastemaker/…`, `docs/…`, `tests/…`) that do not exist."""
    out = []
    for path in re.findall(r"`((?:tastemaker|docs|tests|deploy|proto|data)/[\w./-]+)`", text):
        if not (ROOT / path.rstrip("/")).exists() and not (ROOT / "tastemaker" / path).exists():
            out.append(path)
    return out


def test_every_path_the_docs_name_exists() -> None:
    for page in [ROOT / "README.md", *DOCS]:
        assert _missing_paths(page.read_text(encoding="utf-8")) == [], page.name


def test_the_path_check_can_fail() -> None:
    assert _missing_paths("see `tastemaker/no_such_module.py` and `docs/api.md`") == ["tastemaker/no_such_module.py"]


def test_architecture_names_files_relative_to_the_package_and_they_exist() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = re.findall(r"`((?:services|features|bandits|stickers|training|models|messaging|cli)/[\w/]+\.py)", text)
    assert named, "the architecture page names the files a request passes through"
    assert [n for n in named if not (ROOT / "tastemaker" / n).exists()] == []


def test_no_issue_numbers_or_history_in_the_docs() -> None:
    for page in [ROOT / "README.md", *DOCS]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"(?i)\bissue\s*#?\d+|(?<![\w&])#\d{1,3}\b", text), page.name
