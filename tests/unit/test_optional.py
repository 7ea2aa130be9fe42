"""Optional heavy dependencies name the extra that brings them; unknown variables are reported."""

from __future__ import annotations

import logging

import pytest

from tastemaker.optional import MissingExtra, require
from tastemaker.services.config import Settings, unknown_variables


def test_a_missing_optional_package_names_its_extra() -> None:
    with pytest.raises(MissingExtra, match=r"training things needs `no_such_module_tm`.*tastemaker\[ml\]"):
        require("no_such_module_tm.sub", "ml", "training things")
    assert require("json", "ml", "reading").dumps([1]) == "[1]"


def test_a_mistyped_variable_is_reported_with_the_name_it_resembles(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"TASTEMAKER_STRATEGI": "softmax", "TASTEMAKER_EPSILON": "0.2", "TASTEMAKER_TEST_REDIS_URL": "x"}
    assert unknown_variables(environ) == ["TASTEMAKER_STRATEGI (did you mean TASTEMAKER_STRATEGY?)"]
    with caplog.at_level(logging.WARNING):
        settings = Settings.from_env(environ)
    assert settings.strategy == "epsilon-greedy" and settings.epsilon == 0.2
    assert "TASTEMAKER_STRATEGI" in caplog.text
