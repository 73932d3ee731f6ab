"""The application layer's own errors, beside the domain's (InvalidChange, ConcurrencyError, PointError,
ChangesetIdConflict, StoreError), which it lets through as they are.

The command line reports each as one line with exit code 2; the HTTP API as a problem document
(NotFound 404, BadRequest 400). This module imports nothing heavy: any client may import it at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pydantic


class BadRequest(ValueError):
    """Input the request itself gets wrong (a malformed changeset, an unknown event type, a bad limit)."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field
        """The request's field at fault, when one is (``limit``, ``type``, ``events[2].table``)."""


class NotFound(ValueError):
    """A stream, table or changeset the request names that does not exist (the nearest name suggested)."""

    def __init__(self, message: str, *, kind: str, name: str, suggestion: str | None = None):
        super().__init__(message + (f"; did you mean {suggestion!r}?" if suggestion else ""))
        self.kind = kind
        self.name = name
        self.suggestion = suggestion


def nearest(name: str, known: set[str] | list[str]) -> str | None:
    """The known name closest to ``name`` (a typo's likely meaning), or None."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    return close[0] if close else None


def pydantic_message(exc: pydantic.ValidationError) -> str:
    """The first error of a pydantic ValidationError as one readable line."""
    from events.catalog import EVENT_TYPES

    errors = exc.errors()
    # An error on a container that also has errors inside is a consequence of those.
    errors = [
        e
        for e in errors
        if not any(
            o is not e and len(o["loc"]) > len(e["loc"]) and o["loc"][: len(e["loc"])] == e["loc"] for o in errors
        )
    ] or errors
    err = errors[0]
    parts: list[str] = []
    for item in err["loc"]:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in EVENT_TYPES or item.startswith("function-"):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    where = "".join(parts)
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if err["type"] == "missing":
        msg = "field required"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    if not where or msg.startswith(where):
        return msg + suffix
    return f"{where}: {msg}{suffix}"


def error_field(exc: pydantic.ValidationError) -> str | None:
    """Where the first error of a ValidationError is, as ``events[2].table`` (None at the top)."""
    from events.catalog import EVENT_TYPES

    loc: Any = exc.errors()[0]["loc"] if exc.errors() else ()
    parts = [
        f"[{i}]" if isinstance(i, int) else ("." if n else "") + str(i)
        for n, i in enumerate(
            x for x in loc if isinstance(x, int) or not (x in EVENT_TYPES or x.startswith("function-"))
        )
    ]
    return "".join(parts) or None
