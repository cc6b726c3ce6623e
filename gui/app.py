"""``star-studio`` / ``star studio``: open STAR Studio."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", help="audio files to open")
    parser.add_argument("--model", default="default",
                        help="STAR-VAE: a bundled name or a model directory (default: default)")
    parser.add_argument("--generator", default="default",
                        help="STAR-Gen generator directory or bundled name; 'none' turns "
                        "generation off (default: the bundled one)")


def run(args) -> int:
    try:
        from PyQt6.QtWidgets import QApplication
    except ImportError:
        print("error: STAR Studio needs PyQt6: pip install -e '.[gui]' (or pip install PyQt6)",
              file=sys.stderr)
        return 2
    from .main_window import StudioWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("STAR Studio")
    app.setOrganizationName("STAR plugin")
    generator = None if str(args.generator).lower() == "none" else args.generator
    window = StudioWindow(model=args.model, generator=generator)
    window.show()
    if args.files:
        window.open_files(args.files)
    return app.exec()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="star-studio", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
