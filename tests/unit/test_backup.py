"""`python -m auth_api db backup PATH`: online, consistent, private copies of both databases."""

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path


from auth_api.backup import backup, integrity
from auth_api.config import Settings
from auth_api.store import UserStore
from jwtgate.revocation import Revocation, SqliteRevocationStore


ROOT = Path(__file__).resolve().parents[2]


def cli(data_dir, *args):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "JWTGATE_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "auth_api", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_backup_command_copies_both_databases(tmp_path):
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    assert cli(data, "users", "add", "alice").returncode == 0
    SqliteRevocationStore(data / "revocations.db").add([Revocation("jti", "j1", 4_000_000_000)])
    result = cli(data, "db", "backup", str(tmp_path / "backup"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"backed up {name} to {tmp_path / 'backup' / name}"
                                          for name in ("auth.db", "revocations.db")]
    assert stat.S_IMODE(os.stat(tmp_path / "backup").st_mode) == 0o700
    for name in ("auth.db", "revocations.db"):
        copy = tmp_path / "backup" / name
        assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
        assert integrity(copy) == "ok"
        assert not (tmp_path / "backup" / f"{name}-wal").exists()
    with sqlite3.connect(tmp_path / "backup" / "auth.db") as connection:
        assert connection.execute("SELECT username FROM users").fetchall() == [("alice",)]
    with sqlite3.connect(tmp_path / "backup" / "revocations.db") as connection:
        assert connection.execute("SELECT kind, value FROM revocations").fetchall() == [("jti", "j1")]
    # A second backup replaces the first.
    assert cli(data, "db", "backup", str(tmp_path / "backup")).returncode == 0


def test_a_restored_backup_serves(tmp_path):
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    assert cli(data, "users", "add", "alice").returncode == 0
    backup(str(data), str(tmp_path / "backup"))
    restored = tmp_path / "restored"
    restored.mkdir()
    for name in ("auth.db", "revocations.db"):
        (restored / name).write_bytes((tmp_path / "backup" / name).read_bytes())
    store = UserStore.open(Settings(data_dir=str(restored)))
    assert store.get_user("alice") is not None


def test_backup_without_databases_fails_with_a_message(tmp_path):
    result = cli(tmp_path / "empty", "db", "backup", str(tmp_path / "backup"))
    assert result.returncode == 1
    assert "auth_api init" in result.stderr
    assert not list((tmp_path / "backup").glob("*.partial"))


def test_backup_during_writes_is_a_consistent_snapshot(tmp_path):
    data = tmp_path / "data"
    store = UserStore.open(Settings(data_dir=str(data)))
    revocations = SqliteRevocationStore(data / "revocations.db")
    revocations.create()
    stop = threading.Event()

    def write():
        for index in range(2000):
            if stop.is_set():
                return
            # One transaction holds both rows: a snapshot has both or neither.
            store.add_user(f"user{index}", "hash")
            revocations.add([Revocation("jti", f"{pair}{index}", 4_000_000_000) for pair in "ab"])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for round_ in range(5):
            written = backup(str(data), str(tmp_path / f"backup{round_}"))
            assert [integrity(path) for path in written] == ["ok", "ok"]
            with sqlite3.connect(written[1]) as connection:
                values = [row[0] for row in connection.execute("SELECT value FROM revocations")]
            assert len(values) % 2 == 0
    finally:
        stop.set()
        writer.join()
