"""auth_api: verifies passwords and issues the access tokens jwtgate's validator checks."""
