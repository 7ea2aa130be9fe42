"""Settings are documented in one place — each field's help — and the `--help` epilogue and
docs/configuration.md are made from it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from tastemaker.cli import build_parser
from tastemaker.services.config import (
    ENV_PREFIX,
    Settings,
    configuration_markdown,
    setting,
    settings_in_force,
    undocumented,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_has_help_and_a_section() -> None:
    assert undocumented() == []


def test_the_check_finds_a_field_without_help() -> None:
    @dataclass(frozen=True)
    class Partial:
        documented: int = setting(1, "a documented field", "A section")
        bare: int = 2

    assert undocumented(Partial) == ["bare"]


def test_configuration_doc_is_generated_and_fresh() -> None:
    assert DOC.read_text(encoding="utf-8") == configuration_markdown(), (
        "docs/configuration.md is stale: run `tastemaker settings --markdown > docs/configuration.md`"
    )


def test_help_lists_every_variable_with_its_default() -> None:
    text = build_parser().format_help()
    for f in fields(Settings):
        assert ENV_PREFIX + f.name.upper() in text, f.name
    assert "[epsilon-greedy]" in text and "squarecb" in text


def test_settings_in_force_mask_secrets() -> None:
    shown = dict(settings_in_force(Settings(decision_key="k" * 16, epsilon=0.25)))
    assert shown["TASTEMAKER_DECISION_KEY"] == "set" and "k" * 16 not in shown.values()
    assert shown["TASTEMAKER_EPSILON"] == "0.25" and shown["TASTEMAKER_USER_ID_KEY"] == ""
