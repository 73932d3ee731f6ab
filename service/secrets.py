"""A fleet URL's password, found where the URL says, at the moment of connecting.

The log holds URLs without secrets (events.fleet.check_database_url): a password is written as
``${ENV_VAR}``, read from the connecting process's environment, or named by ``password_file=PATH``
in the query string (a Kubernetes or compose secret mounted as a file). The resolved URL lives in
memory only: it is never logged, stored or shown (``display_url`` hides the password).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class SecretMissing(ValueError):
    """The URL names a secret that is not there (the message names where it looked, never a value)."""


def resolve_url(url: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    password: str | None = None
    kept = []
    for key, value in query:
        if key == "password_file":
            try:
                password = Path(value).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise SecretMissing(f"cannot read the password file {value}: {exc.strerror or exc}") from None
        else:
            kept.append((key, value))
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = userinfo
    if at and ":" in userinfo:
        user, given = userinfo.split(":", 1)
        found = _PLACEHOLDER.match(given)
        if found is None:
            password = given if password is None else password
        else:
            name = found.group(1)
            if name not in env:
                raise SecretMissing(f"the URL's password is ${{{name}}}, and {name} is not set in the environment")
            password = env[name]
    if password is None:
        return (
            url
            if not any(k == "password_file" for k, _ in query)
            else urlunsplit(parts._replace(query=urlencode(kept)))
        )
    netloc = f"{user}:{quote(password, safe='')}@{hostport}" if at else f":{quote(password, safe='')}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(kept)))
