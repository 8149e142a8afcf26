"""`clipgan ui`: serve the web app (clipgan.ui) until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from clipgan.cli_app import app, user_errors
from clipgan.errors import ClipganError
from clipgan.ui import HOST, PORT


@app.command()
@user_errors
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 opens it to the network.")] = HOST,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = PORT,
    share: Annotated[bool, typer.Option(help="Also make a public gradio.live link (off unless asked).")] = False,
    outdir: Annotated[Optional[Path], typer.Option(help="Folder for results (default: a new temporary folder).")] = None,
):
    """Start the web app: generate with live previews, morph, edit, and CLIP similarity."""
    try:
        from clipgan.ui.app import launch
    except ImportError as e:
        raise ClipganError(f"the web app needs the ui extra: pip install 'clipgan[ui]' ({e.name} is missing)") from None
    if not 0 < port < 65536:
        raise ClipganError(f"port must be between 1 and 65535, got {port}")
    if outdir is not None and outdir.exists() and not outdir.is_dir():
        raise ClipganError(f"--outdir {outdir} is a file, not a folder")
    launch(host=host, port=port, share=share, outdir=outdir)
