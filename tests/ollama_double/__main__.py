"""Run the Ollama test double: python -m tests.ollama_double --models DIR [--registry DIR] [--port N]

Prints one line, "ollama test double listening on http://127.0.0.1:PORT", once it accepts
connections, and stops cleanly on SIGTERM or SIGINT (exit status 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .server import OllamaDouble


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ollama_double", description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, type=Path, help="models folder (like OLLAMA_MODELS)")
    parser.add_argument("--registry", type=Path, default=None, help="registry folder that /api/pull reads")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free port)")
    parser.add_argument("--ollama-version", default="0.33.0-rc2-0-gfb30760", help="what /api/version reports")
    parser.add_argument("--port-file", type=Path, default=None, help="also write the port number to this file")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    double = OllamaDouble(args.models, registry_dir=args.registry, version=args.ollama_version,
                          port=args.port, verbose=args.verbose)
    try:
        double.start()
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.port_file is not None:
        args.port_file.write_text(f"{double.port}\n")
    print(f"ollama test double listening on {double.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        double.stop()
    print("ollama test double stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
