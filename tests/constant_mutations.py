"""Hand-made mutations of the token checks' module-level constants, which mutmut leaves alone.

`make mutate` runs this after mutmut: each regex, bound and allow-list of jwtgate/jose.py and
jwtgate/claims.py is changed one step, in a copy of the tree, and the named unit tests must fail.
`python -m tests.constant_mutations 3 17` runs only those entries. A change that no test notices
is a gap, unless the entry says why no input can tell it apart (then it must survive: a test that
kills it means the reason is wrong).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the unit tests import or read; the copy is what they run against.
_COPIED = ("jwtgate", "validator", "auth_api", "backend", "launcher", "nginx", "examples", "tests",
           "setup.cfg", "pyproject.toml")
JOSE, CLAIMS = "jwtgate/jose.py", "jwtgate/claims.py"
TEST_JOSE, TEST_CLAIMS = "tests/unit/test_jose.py", "tests/unit/test_provider_claims.py"
TEST_VALIDATOR, TEST_VERIFIER = "tests/unit/test_validator.py", "tests/unit/test_verifier.py"


@dataclass(frozen=True)
class Mutation:
    path: str
    old: str
    new: str
    tests: str
    equivalent: str = ""


def _each(path, old, news, tests):
    return [Mutation(path, old, new, tests) for new in news]


_HEADER = '"alg", "typ", "kid", "x5t", "x5t#S256"'
_SEGMENT = '_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")'
_KID = r'_KID = re.compile(r"[\x21-\x7e]{1,128}")'
_VISIBLE = r'_VISIBLE = re.compile(r"[\x21-\x7e]{1,255}")'
_NAME = "[A-Za-z0-9._:/@-]{1,64}"
_HEADER_VALUE = r"[\x20-\x2b\x2d-\x7e]{1,256}"
_JKT = '_JKT = re.compile(r"[A-Za-z0-9_-]{43}")'
_TYPES = '("token_use", "token_type", "type", "typ")'
_OWN = '{"exp", "iat", "sub", "iss", "aud", "jti"}'
_REQUIRED = 'required_claims: frozenset = frozenset({"exp", "iat", "sub", "iss"})'

MUTATIONS = [
    *_each(JOSE, _HEADER, [_HEADER + ', "jwk"', _HEADER + ', "cty"', '"alg", "typ", "kid", "x5t#S256"',
                           '"alg", "typ", "x5t", "x5t#S256"', '"alg", "kid", "x5t", "x5t#S256"'], TEST_JOSE),
    *_each(JOSE, "{27}", ["{26}", "{28}", "{26,28}"], TEST_JOSE),
    *_each(JOSE, '{43}")}', ['{42}")}', '{44}")}'], TEST_JOSE),
    Mutation(JOSE, '"x5t": re.compile(r"[A-Za-z0-9_-]', '"x5t": re.compile(r"[A-Za-z0-9_=-]', TEST_JOSE),
    Mutation(JOSE, '"x5t#S256": re.compile(r"[A-Za-z0-9_-]', '"x5t#S256": re.compile(r"[A-Za-z0-9_+-]', TEST_JOSE),
    *_each(JOSE, _SEGMENT, [_SEGMENT.replace("_-]+", "_=-]+"), _SEGMENT.replace("_-]+", "_+/-]+"),
                            _SEGMENT.replace("-]+", "-]*"), _SEGMENT.replace("_-]+", "_. -]+")], TEST_JOSE),
    *_each(JOSE, "frozenset(_BASE64URL[::16])", ["frozenset(_BASE64URL[::8])"], TEST_VALIDATOR),
    *_each(JOSE, "frozenset(_BASE64URL[::4])", ["frozenset(_BASE64URL[::2])"], TEST_VALIDATOR),
    Mutation(JOSE, "(frozenset(_BASE64URL), frozenset(),", "(frozenset(_BASE64URL), frozenset(_BASE64URL),",
             TEST_VALIDATOR),
    *_each(JOSE, _KID, [_KID.replace("128", "129"), _KID.replace("128", "127"), _KID.replace("x21", "x20"),
                        _KID.replace("x7e", "x7f"), _KID.replace("x21", "x22"), _KID.replace("x7e", "x7d")],
           TEST_JOSE),
    *_each(JOSE, "_MAX_HEADER_BYTES = 1024", ["_MAX_HEADER_BYTES = 1025", "_MAX_HEADER_BYTES = 1023"], TEST_JOSE),
    *_each(JOSE, "MAX_JSON_DEPTH = 10", ["MAX_JSON_DEPTH = 11", "MAX_JSON_DEPTH = 9"], TEST_JOSE),
    *_each(JOSE, '_OPENERS = frozenset(b"[{")', ['_OPENERS = frozenset(b"[")', '_OPENERS = frozenset(b"{")'],
           TEST_JOSE),
    *_each(JOSE, '_CLOSERS = frozenset(b"]}")', ['_CLOSERS = frozenset(b"]")', '_CLOSERS = frozenset(b"}")'],
           TEST_JOSE),
    *_each(JOSE, "_QUOTE, _BACKSLASH = ord('\"'), ord(\"\\\\\")",
           ["_QUOTE, _BACKSLASH = ord('\"'), ord(\"/\")", "_QUOTE, _BACKSLASH = ord(\"'\"), ord(\"\\\\\")"], TEST_JOSE),
    *_each(JOSE, "_MAX_KNOWN_HEADERS = 64", ["_MAX_KNOWN_HEADERS = 65", "_MAX_KNOWN_HEADERS = 63"], TEST_JOSE),
    Mutation(JOSE, 'bytes.maketrans(b"-_", b"+/")', 'bytes.maketrans(b"_-", b"+/")', TEST_VALIDATOR),
    *_each(CLAIMS, _VISIBLE, [_VISIBLE.replace("255", "256"), _VISIBLE.replace("255", "254"),
                              _VISIBLE.replace("x21", "x20"), _VISIBLE.replace("x7e", "x7f"),
                              _VISIBLE.replace("x21", "x22"), _VISIBLE.replace("x7e", "x7d"),
                              _VISIBLE.replace("{1,", "{0,")], TEST_CLAIMS),
    *_each(CLAIMS, _NAME, [_NAME.replace("64", "65"), _NAME.replace("64", "63"), _NAME.replace("{1,", "{0,"),
                           _NAME.replace("@-", "@,-"), _NAME.replace("@-", "@+-"), _NAME.replace("@-", "@ -"),
                           _NAME.replace("@-", "-"), _NAME.replace("._", "."), _NAME.replace(":/", "/")], TEST_CLAIMS),
    *_each(CLAIMS, _HEADER_VALUE, [_HEADER_VALUE.replace("x2b", "x2c"), _HEADER_VALUE.replace("x2b", "x2a"),
                                   _HEADER_VALUE.replace("x2d", "x2e"), _HEADER_VALUE.replace("x7e", "x7f"),
                                   _HEADER_VALUE.replace("x7e", "x7d"), _HEADER_VALUE.replace("x20", "x1f"),
                                   _HEADER_VALUE.replace("x20", "x21"), _HEADER_VALUE.replace("256", "257"),
                                   _HEADER_VALUE.replace("256", "255"), _HEADER_VALUE.replace("{1,", "{0,"),
                                   _HEADER_VALUE.replace("x7e]", r"x7e\u00e9]")], TEST_CLAIMS),
    *_each(CLAIMS, _JKT, [_JKT.replace("43", "42"), _JKT.replace("43", "44"), _JKT.replace("{43}", "{43,44}"),
                          _JKT.replace("_-]", "_+-]"), _JKT.replace("_-]", "_=-]"), _JKT.replace("_-]", "-]")],
           TEST_CLAIMS),
    *_each(CLAIMS, "_MAX_CLAIMS = 64", ["_MAX_CLAIMS = 65", "_MAX_CLAIMS = 63"], TEST_CLAIMS),
    *_each(CLAIMS, "_MAX_NAMES = 64", ["_MAX_NAMES = 65", "_MAX_NAMES = 63"], TEST_CLAIMS),
    *_each(CLAIMS, "_MAX_LISTED = 256", ["_MAX_LISTED = 257", "_MAX_LISTED = 255"], TEST_CLAIMS),
    *_each(CLAIMS, "_MAX_NUMERIC_DATE = 253_402_300_799",
           ["_MAX_NUMERIC_DATE = 253_402_300_800", "_MAX_NUMERIC_DATE = 253_402_300_798"], TEST_CLAIMS),
    *_each(CLAIMS, _TYPES, ['("token_type", "type", "typ")', '("token_use", "type", "typ")',
                            '("token_use", "token_type", "typ")', '("token_use", "token_type", "type")'], TEST_CLAIMS),
    Mutation(CLAIMS, "(urn:ietf:params:oauth:token-type:)?", "", TEST_CLAIMS),
    *_each(CLAIMS, "(refresh|id|offline)", ["(refresh|id)", "(refresh|offline)", "(id|offline)",
                                            r"(refresh|id|offline|\w+)"], TEST_CLAIMS),
    *_each(CLAIMS, "([_ -]?token)?", ["", "([_-]?token)?", "([ -]?token)?", "([_ ]?token)?", "([_ -]token)?"],
           TEST_CLAIMS),
    Mutation(CLAIMS, r"(\+jwt)?", "", TEST_CLAIMS),
    Mutation(CLAIMS, '(\\+jwt)?",\n                         re.IGNORECASE)', '(\\+jwt)?")', TEST_CLAIMS),
    *_each(CLAIMS, _OWN, ['{"exp", "iat", "sub", "iss", "aud"}', '{"exp", "iat", "sub", "iss", "jti"}',
                          '{"exp", "sub", "iss", "aud", "jti"}'], TEST_CLAIMS),
    *_each(CLAIMS, _REQUIRED, [_REQUIRED.replace('"exp", ', ""), _REQUIRED.replace('"iat", ', ""),
                               _REQUIRED.replace(', "iss"', "")], TEST_CLAIMS),
    Mutation(CLAIMS, _REQUIRED, _REQUIRED.replace('"sub", ', ""), TEST_CLAIMS,
             equivalent="check_claims requires `sub` on its own (_visible(claims, \"sub\", True)), listed or not"),
    Mutation(CLAIMS, 'roles: tuple = ("roles",)', "roles: tuple = ()", TEST_CLAIMS),
    Mutation(CLAIMS, 'scopes: tuple = ("scope",)', "scopes: tuple = ()", TEST_CLAIMS),
    Mutation(CLAIMS, 'audience_claim: str = "aud"', 'audience_claim: str = "client_id"', TEST_CLAIMS),
    Mutation(CLAIMS, "exact_audience: bool = False", "exact_audience: bool = True", TEST_CLAIMS),
    Mutation(CLAIMS, "forward_claims: bool = False", "forward_claims: bool = True", TEST_VERIFIER),
]


def _pytest(tree, tests):
    """pytest's exit code for `tests` in `tree`: 0 all passed, 1 some failed, anything else a broken run."""
    environment = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", tests],
                          cwd=tree, env=environment, capture_output=True, text=True, timeout=600).returncode


def _imports_the_copy(tree):
    environment = dict(os.environ, PYTHONPATH=str(tree))
    found = subprocess.run([sys.executable, "-c", "import jwtgate.jose; print(jwtgate.jose.__file__)"],
                           cwd=tree, env=environment, capture_output=True, text=True, check=True).stdout.strip()
    return Path(found) == tree / JOSE


def _outcome(mutation, code):
    if code not in (0, 1):
        return f"broken run (pytest exit {code})", False
    killed = code == 1
    if mutation.equivalent:
        return ("killed, though listed as equivalent: the reason is wrong" if killed
                else f"survived, equivalent: {mutation.equivalent}"), not killed
    return ("killed" if killed else "SURVIVED: no test notices this change"), killed


def main(selected):
    chosen = [(number, mutation) for number, mutation in enumerate(MUTATIONS) if not selected or number in selected]
    failures = []
    with tempfile.TemporaryDirectory(prefix="jwtgate-constants-") as directory:
        tree = Path(directory)
        for name in _COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, tree / name)
        if not _imports_the_copy(tree):
            sys.exit("the tests would import jwtgate from outside the copy: mutations would test nothing")
        for tests in sorted({mutation.tests for _, mutation in chosen}):
            if _pytest(tree, tests) != 0:
                sys.exit(f"{tests} fails on the unchanged code: fix that first")
        for number, mutation in chosen:
            target = tree / mutation.path
            original = target.read_text()
            target.write_text(original.replace(mutation.old, mutation.new))
            try:
                code = _pytest(tree, mutation.tests)
            finally:
                target.write_text(original)
            outcome, good = _outcome(mutation, code)
            print(f"{number:3} {outcome}: {mutation.path} {mutation.old!r} -> {mutation.new!r}", flush=True)
            if not good:
                failures.append(number)
    print(f"{len(chosen) - len(failures)} of {len(chosen)} as expected" + (f"; not: {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main({int(argument) for argument in sys.argv[1:]}))
