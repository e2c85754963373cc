"""Re-execute a bench/ script inside bench/.venv, creating or updating the venv first.

Only the standard library is used here, because this runs under the system Python before
the venv exists.
"""

import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
VENV_DIR = BENCH_DIR / ".venv"
REQUIREMENTS = BENCH_DIR / "requirements.txt"
# Copy of the requirements last installed into the venv, to detect when they change.
INSTALLED_STAMP = VENV_DIR / "installed-requirements.txt"


def ensure_venv(script):
    """Return if already running in bench/.venv; otherwise prepare it and exec `script` there."""
    if Path(sys.prefix).resolve() == VENV_DIR.resolve():
        return
    python = VENV_DIR / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True)
    requirements_text = REQUIREMENTS.read_text()
    if not INSTALLED_STAMP.exists() or INSTALLED_STAMP.read_text() != requirements_text:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)
        INSTALLED_STAMP.write_text(requirements_text)
    script = str(Path(script).resolve())
    os.execv(str(python), [str(python), script, *sys.argv[1:]])
