"""The development launcher: `python -m launcher run` starts Nginx and every service on 127.0.0.1."""
