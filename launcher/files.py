"""Where the launcher finds the Nginx files: the installed package's data, or a source checkout's nginx/."""

import importlib.util
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def nginx_dir():
    """The Nginx include files, templates, local configuration templates and the login page.

    Installed from the wheel they are the package data directory jwtgate_nginx (setup.cfg maps the
    top-level nginx/ to it); run from a checkout (make run, an editable install), the checkout's own
    nginx/, so an edit there shows at the next start.
    """
    if (_CHECKOUT / "setup.cfg").is_file() and (_CHECKOUT / "nginx").is_dir():
        return _CHECKOUT / "nginx"
    spec = importlib.util.find_spec("jwtgate_nginx")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the Nginx files (package jwtgate_nginx) are not installed: reinstall jwtgate")
    return Path(next(iter(spec.submodule_search_locations)))
