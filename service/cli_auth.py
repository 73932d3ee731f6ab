"""Tokens and approvals: ``token create|revoke|list``, ``approve`` and ``approvals require|list``.

Parse, call service/app/tokens.py or service/app/approvals.py, render; nothing else. Registered on the
main parser by ``add_parsers``; every heavy import is inside a command, as in service/cli.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from events.store import EventStore

ROLE_HELP = "reader, author (append, tag, revert), deployer (migrate, targets), admin (tokens, fleet, policies)"


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("token", help="API tokens: create (shown once), revoke, list")
    tokens = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    q = tokens.add_parser("create", help="make a token; prints it alone on stdout, once")
    q.add_argument("--name", required=True, help="its name (what it records is by token:NAME)")
    q.add_argument("--role", required=True, choices=["reader", "author", "deployer", "admin"], help=ROLE_HELP)
    q.add_argument(
        "--stream", action="append", metavar="STREAM", help="limit it to this stream (repeat for more; default: all)"
    )
    q.add_argument("--expires", metavar="DURATION", help="expire after 90d, 12h, 30m, 2w ... (default: never)")
    q.add_argument("--actor", help="who makes it (default: the OS user)")
    q.set_defaults(run=cmd_token_create)
    q = tokens.add_parser("revoke", help="revoke a token, by name or id")
    q.add_argument("token", metavar="NAME|ID")
    q.add_argument("--actor", help="who revokes it (default: the OS user)")
    q.set_defaults(run=cmd_token_revoke)
    q = tokens.add_parser("list", help="every token: name, role, streams, expiry, last use (never the secret)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(run=cmd_token_list)

    p = sub.add_parser("approve", help="approve a changeset (not your own) so it may be applied where required")
    p.add_argument("changeset", metavar="CHANGESET_ID", help="its id (or, with --stream, a version it holds)")
    p.add_argument("--stream", help="the stream it is on (default: wherever the id is)")
    p.add_argument("--actor", help="who approves (default: the OS user)")
    p.add_argument("-m", "--message", dest="comment", metavar="COMMENT", help="a comment kept with the approval")
    p.set_defaults(run=cmd_approve)

    p = sub.add_parser("approvals", help="approval rules: how many approvals a stream's changesets need")
    rules = p.add_subparsers(dest="approvals_command", required=True, metavar="ACTION")
    q = rules.add_parser("require", help="every changeset of STREAM needs N approvals to be applied (0: none)")
    q.add_argument("stream", metavar="STREAM")
    q.add_argument("count", metavar="N", type=int)
    q.add_argument("--actor", help="who sets the rule (default: the OS user)")
    q.set_defaults(run=cmd_approvals_require)
    q = rules.add_parser("list", help="each stream's rule, and a stream's changesets still waiting for approvals")
    q.add_argument("--stream", help="also list this stream's changesets lacking approvals")
    q.add_argument("--json", action="store_true")
    q.set_defaults(run=cmd_approvals_list)


def _actor(args: argparse.Namespace) -> str:
    from service.cli import default_actor

    return getattr(args, "actor", None) or default_actor()


def _usage(exc: Exception) -> Exception:
    from service.cli import UsageError

    return UsageError(str(exc))


async def cmd_token_create(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import tokens

    try:
        expires = tokens.parse_expiry(args.expires) if args.expires is not None else None
        text, info = await tokens.create_token(
            store,
            name=args.name,
            role=args.role,
            streams=tuple(args.stream) if args.stream else None,
            expires_in=expires,
            actor=_actor(args),
        )
    except tokens.TokenError as exc:
        raise _usage(exc) from None
    sys.stdout.write(text + "\n")
    until = f", expires {info.public()['expires_at']}" if info.expires_at else ""
    sys.stderr.write(f"schemalog: token {info.name} ({info.role}{until}) made; it is shown this once\n")
    return 0


async def cmd_token_revoke(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import tokens
    from service.cli import out

    try:
        info = await tokens.revoke_token(store, args.token, actor=_actor(args))
    except tokens.TokenError as exc:
        raise _usage(exc) from None
    out(f"revoked token {info.name} ({info.token_id})")
    return 0


async def cmd_token_list(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import tokens
    from service.cli import out, out_json

    rows = [t.public() for t in await tokens.list_tokens(store)]
    if args.json:
        out_json(rows)
        return 0
    if not rows:
        out("no tokens (make one with: schemalog token create --name NAME --role ROLE)")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        scope = ",".join(r["streams"]) if r["streams"] is not None else "all streams"
        expires = r["expires_at"] or "never"
        used = r["last_used_at"] or "never"
        out(
            f"{r['name']:<{width}}  {r['token_id']}  {r['role']:<8}  {r['state']:<7}  {scope}"
            f"  expires {expires}  last used {used}"
        )
    return 0


async def cmd_approve(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import approvals
    from service.cli import out, plural

    try:
        result = await approvals.approve(store, args.stream, args.changeset, _actor(args), comment=args.comment)
    except approvals.ApprovalError as exc:
        raise _usage(exc) from None
    ref = result.changeset
    span = f"v{ref.first_version}" + (f"..v{ref.last_version}" if ref.last_version != ref.first_version else "")
    need = f" of the {result.need} the stream requires" if result.need else ""
    have = plural(len(result.approvers), "approval")
    out(f"approved {ref.stream} changeset {ref.changeset_id} ({span}): {have}{need}")
    return 0


async def cmd_approvals_require(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import approvals
    from service.cli import out, plural

    try:
        await approvals.require(store, args.stream, args.count, _actor(args))
    except approvals.ApprovalError as exc:
        raise _usage(exc) from None
    if args.count:
        out(f"stream {args.stream}: each changeset now needs {plural(args.count, 'approval')} to be applied")
    else:
        out(f"stream {args.stream}: changesets need no approval")
    return 0


async def cmd_approvals_list(args: argparse.Namespace, store: EventStore) -> int:
    from service.app import approvals
    from service.app.tokens import auth_view
    from service.cli import out, out_json, plural

    view = await auth_view(store)
    rules = dict(sorted(view.required.items()))
    waiting: list[dict[str, Any]] = []
    if args.stream is not None:
        head = await store.version(args.stream)
        missing = await approvals.missing_approvals(store, args.stream, 0, head)
        waiting = [m._asdict() for m in missing]
    if args.json:
        out_json({"required": rules, "waiting": waiting})
        return 0
    if not rules:
        out("no stream requires approvals")
    for stream, count in rules.items():
        out(f"{stream}: {plural(count, 'approval')}")
    for m in waiting:
        out(f"  waiting: {approvals.MissingApproval(**m)}")
    return 0
