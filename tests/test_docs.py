"""The README's CLI reference is the typer app's own: regenerated here and compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipgan import docs

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_cli_reference_is_up_to_date():
    text = README.read_text(encoding="utf-8")
    assert docs.replace_section(text, docs.cli_reference()) == text, \
        "README's CLI reference is out of date: run `python -m clipgan.docs` (or `make docs`)"


def test_reference_lists_every_command_and_option():
    import typer

    from clipgan.cli import app

    reference = docs.cli_reference()
    group = typer.main.get_command(app)
    ctx = group.make_context("clipgan", [], resilient_parsing=True)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert f"### `clipgan {name}`" in reference
        for param in command.params:
            for opt in param.opts if param.param_type_name == "option" else []:
                assert opt in reference, f"{name} {opt}"


def test_check_mode_and_markers(tmp_path, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n\n{docs.START}\nSTALE-TEXT\n{docs.END}\n\nafter\n", encoding="utf-8")
    assert docs.main([str(stale), "--check"]) == 1
    assert docs.main([str(stale)]) == 0
    assert docs.main([str(stale), "--check"]) == 0
    text = stale.read_text(encoding="utf-8")
    assert "STALE-TEXT" not in text and text.endswith(f"{docs.END}\n\nafter\n") and "clipgan generate" in text
    with pytest.raises(ValueError, match="cli-reference"):
        docs.replace_section("no markers here", "x")
