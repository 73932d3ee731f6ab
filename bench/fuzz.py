"""A longer fuzz run than CI's: the generator and the rules of tests/test_fuzz.py, with a count and a seed.

Each case is a mutated changeset fed to ``schemalog append -`` in-process (service.cli.main) against a
SQLite store (a new one every --fresh-every cases) or a fresh PostgreSQL database; the run stops at the
first broken rule (an exit 70, a rejection that wrote something, an accepted changeset after which
history, show, show --format sql, append or verify fails) and prints it. At the end it prints the
figures docs/RELIABILITY.md keeps: cases, seconds, exits by code, accepted and rejected.

    .venv/bin/python bench/fuzz.py [--count 20000] [--seed 1] [--store sqlite|postgresql]
        [--batch 50] [--fresh-every 250]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_fuzz import Broken, Fuzz, run_fuzz


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="cases to run (default 20000)")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis seed: the same seed, the same cases")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--batch", type=int, default=50, help="accepted changesets between follow-up rounds")
    parser.add_argument("--fresh-every", type=int, default=250, help="cases before a new store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        if args.store == "sqlite":
            fuzz = Fuzz(lambda n: f"sqlite:///{folder}/fuzz{n}.db", batch=args.batch, fresh_every=args.fresh_every)
        else:
            from tests.servers import postgres_database_url

            fuzz = Fuzz(
                lambda n: stack.enter_context(postgres_database_url()), batch=args.batch, fresh_every=args.fresh_every
            )
        try:
            figures = run_fuzz(fuzz, args.count, args.seed)
        except Broken as exc:
            print(f"BROKEN after {fuzz.cases} cases: {exc}")
            print(json.dumps(fuzz.figures()))
            return 1
    figures = {"store": args.store, "seed": args.seed, **figures}
    print(json.dumps(figures))
    exits = ", ".join(f"{code}: {n:,}" for code, n in figures["exits"].items())
    print(
        f"| {args.store} | {args.seed} | {figures['cases']:,} | {figures['seconds']} | {figures['accepted']:,}"
        f" | {figures['rejected']:,} | {exits} | {figures['follow_up_rounds']:,} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
