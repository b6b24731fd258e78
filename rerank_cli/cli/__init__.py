"""The `rerank` command: options -> stage calls -> exit code. Never imports numpy or onnxruntime at import."""

from __future__ import annotations

import os
import signal
from typing import NoReturn


def main() -> NoReturn:
    """Console-script entry point: stop signals are handled from the first moment, then the app runs.

    Importing the app (typer, rich) takes a few tenths of a second; a Ctrl-C or SIGTERM in that
    time would otherwise print a traceback of the import. Until the app's own handling is in place,
    they end the process at once with their documented codes (nothing has been read or written).
    """
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(143))
    from .app import main as run

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here, KeyboardInterrupt -> 130
    run()
