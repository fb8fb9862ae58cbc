"""The two versions a rolling upgrade runs side by side (issue 27, item 3;
test_rolling_upgrade.py): the previous release, installed offline from the wheel in
tests/reliability/previous/ into a virtualenv of its own, and the new code — the
stepped_temporal this test session imports.

The previous release's virtualenv has no pip and reaches no index: the running
environment's pip installs the wheel into it (``pip --python VENV install --no-deps
--no-index``), and a ``.pth`` file appends the running environment's site-packages to
its path for the dependencies (temporalio, SQLAlchemy, psycopg, ...). Its own
site-packages comes first, so it imports its own stepped_temporal; a ``.pth`` path
line does not run the ``.pth`` files of the folder it adds, so the new code's editable
install (an import hook installed by such a file) stays out. Processes of either
version run beside a copy of ``upgrade_app``, ``upgrade_client`` and ``upgrade_worker``
in a folder of their own (their working directory and PYTHONPATH), never in the work tree, whose
``stepped_temporal/`` would shadow the release. `Version.says` is what
``upgrade_app`` printed when that version imported it: proof of which code runs.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import stepped_temporal

HERE = Path(__file__).resolve().parent
PREVIOUS = HERE / "previous"
APP_FILES = ("upgrade_app.py", "upgrade_client.py", "upgrade_worker.py")


@dataclass(frozen=True)
class Version:
    """One installation of stepped_temporal and how to run a process on it."""

    #: "previous" or "new"
    label: str
    python: str
    #: the folder with the upgrade_* files: working directory and PYTHONPATH
    app: Path
    #: "VERSION at PATH/stepped_temporal/__init__.py", as upgrade_app printed it there
    says: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.app)}


def previous_commit() -> str:
    """The commit the committed wheel was built from (previous/COMMIT)."""
    return (PREVIOUS / "COMMIT").read_text().strip()


def previous_wheel() -> Path:
    wheels = sorted(PREVIOUS.glob("*.whl"))
    assert len(wheels) == 1, f"expected one wheel in {PREVIOUS}, found {wheels}"
    return wheels[0]


def copy_app(folder: Path) -> Path:
    """A folder holding only the application files both versions import."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in APP_FILES:
        shutil.copy(HERE / name, folder / name)
    return folder


def dependency_paths() -> list[str]:
    """The running environment's site-packages, where the dependencies live."""
    paths = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    paths.append(sysconfig.get_paths()["platlib"])
    if site.ENABLE_USER_SITE:
        paths.append(site.getusersitepackages())
    return [p for p in dict.fromkeys(paths) if Path(p).is_dir()]


def _run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(command)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def which_code(python: str, app: Path) -> str:
    """What upgrade_app prints when `python` imports it as a worker would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PYTHON"))}
    env["PYTHONPATH"] = str(app)
    out = _run([python, "-c", "import upgrade_app"], cwd=app, env=env)
    lines = [line for line in out.splitlines() if line.startswith("upgrade_app: ")]
    assert lines, f"{python} imported upgrade_app without saying which code it runs:\n{out}"
    return lines[-1].removeprefix("upgrade_app: stepped_temporal ")


def new_code(app: Path) -> Version:
    """The new code: this session's Python and stepped_temporal."""
    says = which_code(sys.executable, app)
    expected = str(Path(stepped_temporal.__file__).resolve())
    assert says.endswith(f" at {expected}"), f"the new code's processes run {says}, not {expected}"
    return Version("new", sys.executable, app, says)


def install_previous(folder: Path, app: Path) -> Version:
    """A virtualenv with the previous release's wheel, offline; checked to import it."""
    venv = folder / "previous-venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    _run(
        [
            sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
            "--disable-pip-version-check", "--no-deps", "--no-index", str(previous_wheel()),
        ]
    )  # fmt: skip
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    pth = Path(purelib.strip()) / "stepped_upgrade_dependencies.pth"
    pth.write_text("".join(f"{path}\n" for path in dependency_paths()))
    says = which_code(python, app)
    version, _, where = says.partition(" at ")
    short = previous_commit()[:7]
    assert version.endswith(f"+g{short}") and Path(where).is_relative_to(venv.resolve()), (
        f"the previous release's processes run {says}, not the wheel of {short} in {venv}"
    )
    return Version("previous", python, app, says)
