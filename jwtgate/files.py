"""Key files written safely: an flock for processes starting together, atomic 0600 writes."""

import contextlib
import fcntl
import os
import secrets


@contextlib.contextmanager
def locked(directory):
    """Hold an exclusive flock on <directory>/.lock: gunicorn workers may all start at once."""
    descriptor = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def write_atomically(path, data, mode=0o600):
    """Write data to path atomically, the file having `mode` from its first byte."""
    directory = os.path.dirname(path)
    temporary = os.path.join(directory, f".tmp-{secrets.token_hex(8)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory_descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)


def load_or_create_secret(path, size=32):
    """The random secret in path (0600), made by the first process to ask; its directory is made too."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with locked(directory):
        if not os.path.exists(path):
            write_atomically(path, secrets.token_bytes(size))
        with open(path, "rb") as handle:
            secret = handle.read()
    if len(secret) < size:
        raise ValueError(f"{path} holds {len(secret)} bytes, fewer than {size}: remove it to make a new one")
    return secret
