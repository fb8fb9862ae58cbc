"""Alembic migrations of Stepped's own tables (only those: `stepped_achievements`).

For teams that manage their schema with Alembic: add ``VERSIONS`` to the
``version_locations`` of your ``alembic.ini`` (or ``script_location`` here for
a standalone run) and ``alembic upgrade heads``. The revisions live on their own
branch, labelled ``stepped``, so they never collide with your own history.
Without Alembic, `create_worker()` creates missing tables itself.
"""

from __future__ import annotations

from pathlib import Path

#: this folder: usable as an Alembic ``script_location``
SCRIPT_LOCATION = str(Path(__file__).resolve().parent)
#: the revisions: add it to your ``version_locations``
VERSIONS = str(Path(__file__).resolve().parent / "versions")
