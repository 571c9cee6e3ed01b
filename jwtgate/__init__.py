"""The library every jwtgate service shares: strict JOSE, claims, keys, verification, DPoP, stores, settings, logs."""

# The one place the version is written: setup.cfg reads it (version = attr:), `jwtgate --version` prints it.
__version__ = "0.1.0"
