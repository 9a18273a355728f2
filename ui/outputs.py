"""The demo's output folders: one per visitor session, one per generation inside it, removed by age
and at shutdown.

Nothing here is served by path: the demo returns a run's images and zip to the visitor who made
them, and Gradio serves its copies from its cache under names derived from their content (a
SHA-256), which no one else can guess. So each visitor reaches only their own files.
"""

import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

SESSION_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")


def new_run(root: Path, session: str | None) -> Path:
    """A new, empty folder ROOT/SESSION/TIME-RANDOM for one generation of `session`."""
    session_folder = SESSION_CHARACTERS.sub("", session or "") or "no-session"
    run = root / session_folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex}"
    run.mkdir(parents=True)
    return run


def remove_old_runs(root: Path, max_age: float, now: float | None = None) -> list[Path]:
    """Remove every run folder and zip under `root` last changed more than `max_age` seconds ago, and
    the session folders this empties; `max_age` 0 keeps everything. Returns what was removed."""
    if max_age <= 0 or not root.is_dir():
        return []
    cutoff = (now if now is not None else time.time()) - max_age
    removed = []
    for session in [path for path in root.iterdir() if path.is_dir()]:
        for entry in list(session.iterdir()):
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
                removed.append(entry)
        if not any(session.iterdir()):
            session.rmdir()
    return removed


def remove_all_runs(root: Path) -> None:
    """Every session's folder under `root` (at shutdown); other files there are left alone."""
    if root.is_dir():
        for session in root.iterdir():
            if session.is_dir():
                shutil.rmtree(session, ignore_errors=True)


def is_returnable(root: Path) -> bool:
    """Whether Gradio will return files from `root` without it being served by path: it must lie in
    the working directory or the system's temporary one."""
    resolved = root.resolve()
    return any(resolved.is_relative_to(Path(base).resolve()) for base in (Path.cwd(), tempfile.gettempdir()))
