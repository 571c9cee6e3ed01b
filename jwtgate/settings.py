"""Reading settings from the environment, collecting every problem before failing once."""

import importlib.util
import os
import re

REQUIRED = object()
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(Exception):
    """Start-up configuration is invalid; the message names every bad setting."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = "\n".join(f"  {name}: {why}" for name, why in self.problems)
        super().__init__(f"invalid configuration:\n{lines}")


class EnvReader:
    """Typed getters over an environment mapping that record problems instead of raising."""

    def __init__(self, environ, prefix):
        self._environ = environ
        self._prefix = prefix
        self.problems = []

    def name(self, key):
        return f"{self._prefix}{key}"

    def _raw(self, key, default):
        name = self.name(key)
        value = self._environ.get(name)
        if value is None:
            if default is REQUIRED:
                self.problems.append((name, "is required"))
            return None
        return value

    def text(self, key, default=REQUIRED, *, choices=None, max_length=1024):
        value = self._raw(key, default)
        if value is None:
            return None if default is REQUIRED else default
        value = value.strip()
        if choices is not None and value not in choices:
            self.problems.append((self.name(key), f"must be one of {', '.join(sorted(choices))}"))
        elif not value and default is REQUIRED:
            self.problems.append((self.name(key), "must not be empty"))
        elif len(value) > max_length:
            self.problems.append((self.name(key), f"must be at most {max_length} characters"))
        return value

    def integer(self, key, default=REQUIRED, *, minimum=None, maximum=None):
        value = self._raw(key, default)
        if value is None:
            return None if default is REQUIRED else default
        try:
            number = int(value.strip(), 10)
        except ValueError:
            self.problems.append((self.name(key), f"must be an integer, got {value[:40]!r}"))
            return default if default is not REQUIRED else None
        if minimum is not None and number < minimum:
            self.problems.append((self.name(key), f"must be at least {minimum}"))
        if maximum is not None and number > maximum:
            self.problems.append((self.name(key), f"must be at most {maximum}"))
        return number

    def off_or_integer(self, key, *, minimum, maximum):
        """0 (the feature is off, the default) or an integer from minimum to maximum."""
        number = self.integer(key, 0, minimum=0, maximum=maximum)
        if number is not None and 0 < number < minimum:
            self.problems.append((self.name(key), f"must be 0 (off) or at least {minimum}"))
        return number

    def flag(self, key, default=False):
        value = self._raw(key, default)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered not in _FALSE:
            self.problems.append((self.name(key), f"must be 0 or 1, got {value[:40]!r}"))
        return False

    def secret(self, key, min_bytes=None):
        """A secret from NAME or from the file named by NAME_FILE; None when neither is set."""
        value = self._secret(key)
        if value is not None and min_bytes is not None and len(value) < min_bytes:
            self.problems.append((self.name(key), f"must be at least {min_bytes} bytes"))
        return value

    def _secret(self, key):
        inline = self._environ.get(self.name(key))
        path = self._environ.get(self.name(f"{key}_FILE"))
        if inline is not None and path is not None:
            self.problems.append((self.name(key), f"set either it or {self.name(key)}_FILE, not both"))
            return None
        if path is None:
            return inline.encode() if inline is not None else None
        try:
            with open(path, "rb") as handle:
                return handle.read().rstrip(b"\r\n")
        except OSError as error:
            self.problems.append((self.name(f"{key}_FILE"), f"cannot be read: {error.strerror}"))
            return None

    def origins(self, key):
        """A space-separated list of `scheme://host[:port]` origins (RFC 6454), empty by default."""
        values = self.text(key, "").split()
        for origin in values:
            if not _ORIGIN.fullmatch(origin):
                self.problems.append((self.name(key), f"{origin[:60]!r} is not scheme://host[:port]"))
        return frozenset(values)

    def problem(self, key, why):
        self.problems.append((self.name(key), why))

    def needs_extra(self, key, extra, module):
        """Record that this setting's value needs the optional dependency `module`, when it is not installed."""
        if not installed(module):
            self.problem(key, f"needs the {extra} extra, which is not installed: pip install 'jwtgate[{extra}]'")

    def finish(self):
        if self.problems:
            raise ConfigError(self.problems)


def installed(module):
    """True when the top-level `module` (an optional extra's, such as redis) can be imported."""
    return importlib.util.find_spec(module) is not None


def data_dir(environ):
    """The shared data directory: JWTGATE_DATA_DIR, default ./var, made absolute."""
    return os.path.abspath(environ.get("JWTGATE_DATA_DIR") or "var")
