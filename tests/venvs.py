"""Virtualenvs without pip that see chosen site-packages folders as plain sys.path entries.

There `.pth` files of the shared folders (the checkout's editable lcrec among them) are not processed, so `import
lcrec` fails as it does for a user without the package. Used by tests/test_wheel_install.py and bench/beauty.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def bare_venv(folder: Path, clear: bool = False, timeout: float | None = None) -> Path:
    """Create a virtualenv without pip at `folder` (`clear`: empty an existing one first); returns its python."""
    command = [sys.executable, "-m", "venv", "--without-pip", *(["--clear"] if clear else []), str(folder)]
    subprocess.run(command, check=True, timeout=timeout)
    return folder / "bin" / "python"


def share_site_packages(python: Path, folders: Iterable[str], pth_name: str) -> None:
    """Make the virtualenv of `python` see `folders` (a `.pth` file named `pth_name` in its purelib)."""
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / pth_name).write_text("\n".join(folders) + "\n")
