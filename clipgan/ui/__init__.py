"""`clipgan ui`: a local web app (Gradio) on the same API as the CLI; no algorithm lives here.

Needs the `ui` extra (`pip install clipgan[ui]`). `build_app(outdir)` makes the page, `launch()`
serves it on 127.0.0.1 unless told otherwise.
"""

HOST, PORT = "127.0.0.1", 7860  # local only unless asked: the app reads files and runs models
