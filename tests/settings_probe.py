"""Names of the environment variables code looks up: a recording environment, and a probe of the entry points.

The gunicorn configs and the launcher's command line read `os.environ` themselves, so
`python tests/settings_probe.py DATA_DIR` replaces it with a RecordingEnviron before anything of
ours is imported (default arguments such as `environ=os.environ` then bind to the recorder), loads
each service's gunicorn.conf.py and the launcher's command line, and prints the names as JSON.
"""

import contextlib
import io
import json
import os
import runpy
import sys
from collections.abc import MutableMapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("validator", "auth_api", "backend")
# The launcher's command line (`make run`).
LAUNCHER_MAIN = "launcher.__main__"
# What argparse itself looks up while it prints --help: the terminal size and gettext's locale.
ARGPARSE_NAMES = frozenset({"COLUMNS", "LINES", "LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"})


class RecordingEnviron(MutableMapping):
    """An environment mapping that records every name looked up, present or not."""

    def __init__(self, values=()):
        self._values = dict(values)
        self.names = set()

    def __getitem__(self, name):
        self.names.add(name)
        return self._values[name]

    def __setitem__(self, name, value):
        self._values[name] = value

    def __delitem__(self, name):
        del self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)


def probe(data_dir):
    """The names the gunicorn configs and the launcher's command line look up."""
    recorder = RecordingEnviron({"JWTGATE_DATA_DIR": data_dir, "VALIDATOR_JWKS_URL": "http://127.0.0.1/jwks.json"})
    os.environ = recorder
    sys.path.insert(0, str(ROOT))
    for service in SERVICES:
        runpy.run_path(str(ROOT / service / "gunicorn.conf.py"))
    launcher = __import__(LAUNCHER_MAIN, fromlist=["main"])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        launcher.main(["--help"])
    return recorder.names - ARGPARSE_NAMES


if __name__ == "__main__":
    print(json.dumps(sorted(probe(sys.argv[1]))))
