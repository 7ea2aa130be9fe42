"""The generated protobuf code in the repo is what `python -m tastemaker.codegen` makes now."""

from pathlib import Path

from tastemaker.codegen import REPO_ROOT, generate


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert fresh, "codegen produced nothing"
    for path in fresh:
        relative = path.relative_to(tmp_path)
        committed = REPO_ROOT / relative
        assert committed.exists(), f"{relative} is missing: run `python -m tastemaker.codegen`"
        assert committed.read_text() == path.read_text(), f"{relative} is stale: run `python -m tastemaker.codegen`"
