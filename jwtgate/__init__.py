"""The library every jwtgate service shares: strict JOSE, claims, keys, verification, DPoP, stores, settings, logs."""
