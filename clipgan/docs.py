"""The README's CLI reference, generated from the typer app so it cannot drift from the code.

    python -m clipgan.docs            # rewrite the section between the markers in README.md
    python -m clipgan.docs --check    # exit 1 when README.md is out of date (what the test does)
    python -m clipgan.docs --print    # print the section

The section lies between START and END; everything else in the README is left alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"
README = Path(__file__).resolve().parents[1] / "README.md"


def _cell(text: str) -> str:
    """One line of text that is safe inside a markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _usage(command, ctx) -> str:
    pieces = ["[OPTIONS]"] if any(p.param_type_name == "option" for p in command.get_params(ctx)) else []
    for p in command.params:
        if p.param_type_name != "argument":
            continue
        name = p.name.upper() + ("..." if p.nargs == -1 else "")
        pieces.append(name if p.required else f"[{name}]")
    return " ".join([ctx.command_path, *pieces])


def _command_section(command, ctx) -> list[str]:
    lines = [f"### `{ctx.command_path}`", "", (command.help or "").strip(), "", "```", _usage(command, ctx), "```", ""]
    rows = []
    for p in command.get_params(ctx):
        if getattr(p, "hidden", False) or p.name == "help":
            continue
        record = p.get_help_record(ctx)
        if record is None:
            continue
        names, text = record
        panel = getattr(p, "rich_help_panel", None) or ("Arguments" if p.param_type_name == "argument" else "Options")
        rows.append(f"| `{_cell(names)}` | {_cell(panel)} | {_cell(text)} |")
    if rows:
        lines += ["| argument / option | group | description |", "|---|---|---|", *rows, ""]
    return lines


def cli_reference() -> str:
    """Markdown for every command of `clipgan` and each of its arguments and options, in the app's order."""
    import typer

    from clipgan.cli import app

    group = typer.main.get_command(app)
    root = group.make_context("clipgan", [], resilient_parsing=True)
    lines = [
        "_Generated from the CLI by `python -m clipgan.docs` (or `make docs`); do not edit by hand._",
        "",
        (group.help or "").strip(),
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    names = group.list_commands(root)
    commands = [(n, group.get_command(root, n)) for n in names]
    commands = [(n, c) for n, c in commands if c is not None and not c.hidden]
    lines += [f"| [`{n}`](#clipgan-{n}) | {_cell((c.help or '').strip().splitlines()[0] if c.help else '')} |"
              for n, c in commands]
    lines.append("")
    for name, command in commands:
        ctx = command.make_context(name, [], parent=root, resilient_parsing=True)
        lines += _command_section(command, ctx)
    return "\n".join(lines).rstrip() + "\n"


def replace_section(text: str, section: str) -> str:
    """`text` with the part between START and END replaced by `section`."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README has no {START} ... {END} section")
    return text[: start + len(START)] + "\n" + section + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clipgan.docs", description="Refresh the CLI reference in the README.")
    parser.add_argument("readme", nargs="?", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when out of date")
    parser.add_argument("--print", action="store_true", dest="show", help="print the section and exit")
    args = parser.parse_args(argv)
    section = cli_reference()
    if args.show:
        sys.stdout.write(section)
        return 0
    text = args.readme.read_text(encoding="utf-8")
    new = replace_section(text, section)
    if args.check:
        if new != text:
            print(f"{args.readme}: CLI reference is out of date; run `python -m clipgan.docs`", file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"updated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
