"""The jwtgate validator: the `auth_request` target that says 200, 401 or 403."""
