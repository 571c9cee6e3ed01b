"""Pieces shared by the jwtgate services: settings, JSON logs, loopback HTTP and the local stack."""
