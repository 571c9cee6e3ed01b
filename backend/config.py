"""Backend settings, read once from BACKEND_* environment variables."""

import os
from dataclasses import dataclass

from jwtgate.settings import EnvReader, data_dir


@dataclass(frozen=True)
class Settings:
    """The sample backend's few settings; tests build it directly."""

    log_level: str = "info"
    assertion_audience: str = ""
    assertion_jwks_file: str = ""

    @classmethod
    def from_env(cls, environ):
        env = EnvReader(environ, "BACKEND_")
        settings = cls(
            log_level=env.text("LOG_LEVEL", "info", choices={"debug", "info", "warning", "error"}),
            # Set it (to VALIDATOR_ASSERTION_AUDIENCE) to require the gateway's signed assertion.
            assertion_audience=env.text("ASSERTION_AUDIENCE", "", max_length=256),
            assertion_jwks_file=env.text("ASSERTION_JWKS_FILE",
                                         os.path.join(data_dir(environ), "assertion", "jwks.json")),
        )
        env.finish()
        return settings
