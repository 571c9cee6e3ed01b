"""Online backups of auth.db and revocations.db, safe while the auth API is serving.

SQLite's backup API copies a consistent snapshot of each database (WAL readers never block the
writers), so no login or revocation committed before the copy started is missing from it, and
none half-written is in it. Each copy is checked with `PRAGMA integrity_check` and only then
moved into place.
"""

import contextlib
import os
import sqlite3

DATABASES = ("auth.db", "revocations.db")
_BUSY_TIMEOUT_SECONDS = 5


def integrity(path):
    """SQLite's verdict on a database file: "ok", or what is wrong with it."""
    with contextlib.closing(sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS)) as connection:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    return "\n".join(row[0] for row in rows)


def backup(data_dir, target_dir):
    """Copy every database of data_dir into target_dir (created 0700); return the paths written."""
    os.makedirs(target_dir, mode=0o700, exist_ok=True)
    written = []
    for name in DATABASES:
        source = os.path.join(data_dir, name)
        if not os.path.exists(source):
            raise FileNotFoundError(f"no database {source}: run `python -m auth_api init` first")
        destination = os.path.join(target_dir, name)
        partial = destination + ".partial"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        # Created 0600 first: the copy holds password hashes and sessions.
        os.close(os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            with contextlib.closing(sqlite3.connect(source, timeout=_BUSY_TIMEOUT_SECONDS)) as reader, \
                    contextlib.closing(sqlite3.connect(partial)) as writer:
                reader.backup(writer)
                # A standalone file: no -wal beside it for a restore to forget.
                writer.execute("PRAGMA journal_mode = DELETE")
            verdict = integrity(partial)
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"backup of {name} failed its integrity check: {verdict}")
            os.replace(partial, destination)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)
            raise
        written.append(destination)
    return written
