"""What the package's command lines share (``generation/cli.py``, ``evaluation/cli.py``,
``interpret/cli.py``, ``check_inputs.py``).

The convention: each tool has a ``<tool>_parser()`` and a ``<tool>_main(argv=None) -> int`` (a module
with one tool: ``build_parser()`` and ``main()``); ``tools/<tool>.py`` and the console scripts of
pyproject.toml only call the ``main``. Bad input stops with one line naming the option or file at
fault and a non-zero exit status, never with a traceback.
"""

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments end with a single ``prog: error: ...`` line, exit status 2 (the usage stays
    behind --help: in a log of many commands a multi-line usage hides which one failed)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(prog, message):
    """Stop with the one line ``prog: error: message`` on stderr, exit status 1."""
    sys.exit(f"{prog}: error: {message}")
