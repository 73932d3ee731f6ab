"""Signed checkpoints: the head of every stream, signed with a key kept outside the store.

A hash chain shows that a log agrees with itself, not that it is the log that
was written: its hashes need no key, so whoever can write to the store can
rewrite an event and recompute every hash after it. A checkpoint is one JSON
line, appended to a file kept apart from the store: the store's identity, the
time, and each stream's head (version and chain hash, read from the event rows),
signed with Ed25519::

    {"format": "schemalog-checkpoint/1", "store_id": "…", "taken_at": "2026-11-24T10:00:00.000000Z",
     "streams": {"app": {"version": 12, "hash": "…"}}, "key_id": "…", "signature": "…"}

The signature (base64) covers the canonical JSON (events.envelope.canonical_json)
of every other field. ``verify --checkpoints`` checks each line's signature with
the trusted key, that the store is the one checkpointed (another valid store
swapped in is found by its identity), and that every checkpointed head is still
in the log with its chain intact from the genesis. By the chain's hashes, that
proves no checkpointed event was changed, dropped or reordered and no stream was
deleted. The keys are files (PKCS8 PEM private key, mode 0600; SubjectPublicKeyInfo
PEM public key); neither goes into the store or the logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from events.envelope import canonical_json, format_time
from events.store.base import ChainProblem, EventStore, check_chain

FORMAT = "schemalog-checkpoint/1"
KEY_ENV = "SCHEMALOG_CHECKPOINT_KEY"
"""A key file's path (or the PEM text itself) when ``--key`` is not given."""

_HEX = frozenset("0123456789abcdef")


class CheckpointError(ValueError):
    """A key or a checkpoint file that cannot be used: bad input (the message says which and why)."""


class CheckpointRefused(Exception):
    """The log's chains are broken: a checkpoint would sign the damage."""

    def __init__(self, problems: Sequence[ChainProblem]):
        self.problems = list(problems)
        super().__init__(f"the log fails verification ({len(self.problems)} problems): no checkpoint taken")


@dataclass(frozen=True)
class Head:
    version: int
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    """One line of a checkpoint file whose signature verified."""

    line: int
    store_id: str
    taken_at: str
    streams: dict[str, Head]


@dataclass(frozen=True)
class CheckpointProblem:
    """What ``verify --checkpoints`` found: on a line of the file, or at a stream's checkpointed version."""

    line: int
    problem: str
    stream: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.stream is None:
            return f"checkpoint line {self.line}: {self.problem}"
        return f"stream {self.stream!r} version {self.version}: {self.problem} (checkpoint line {self.line})"


# --------------------------------------------------------------------------- keys


def key_id(public: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(prefix: str) -> tuple[Path, Path, str]:
    """Write ``PREFIX.key`` (the private key, PKCS8 PEM, mode 0600) and ``PREFIX.pub`` (the public key);
    never over an existing file. Returns both paths and the key id."""
    private_path, public_path = Path(prefix + ".key"), Path(prefix + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise CheckpointError(f"{path} already exists: a key is never overwritten")
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except CheckpointError:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path, key_id(private.public_key())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, mode)  # exactly this mode, whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _key_bytes(source: str) -> tuple[bytes, str]:
    """A key's PEM bytes and how to name it in a message: ``source`` is a path, or the PEM text itself."""
    if source.lstrip().startswith("-----BEGIN"):
        return source.encode("utf-8"), "the key given as text"
    try:
        return Path(source).read_bytes(), source
    except OSError as exc:
        raise CheckpointError(f"cannot read the key {source}: {exc.strerror}") from None


def load_signing_key(source: str) -> Ed25519PrivateKey:
    """The private key a checkpoint is signed with (PKCS8 PEM, as ``keygen`` writes it)."""
    data, where = _key_bytes(source)
    if b"-----BEGIN PUBLIC KEY-----" in data:
        raise CheckpointError(f"{where} is a public key: a checkpoint is signed with the private key (PREFIX.key)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CheckpointError(f"{where} is not an unencrypted PEM private key{_why(exc)}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{where} is not an Ed25519 key (schemalog keygen makes one)")
    return key


def load_trusted_key(source: str) -> Ed25519PublicKey:
    """The key checkpoints are checked with: a public key in PEM, or a private key (its public half)."""
    data, where = _key_bytes(source)
    key: object
    try:
        if b"PRIVATE KEY-----" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CheckpointError(f"{where} is not a PEM public or private key{_why(exc)}") from None
    if isinstance(key, Ed25519PrivateKey):
        return key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{where} is not an Ed25519 key (schemalog keygen makes one)")
    return key


def _why(exc: Exception) -> str:
    """The one cause worth naming when a key does not load: a password (schemalog keys have none)."""
    return " (it is encrypted with a password)" if isinstance(exc, TypeError) else ""


# --------------------------------------------------------------------------- taking one


async def log_heads(store: EventStore) -> tuple[dict[str, Head], list[ChainProblem]]:
    """Each stream's last event row (version and hash), and every chain problem met on the way: every
    stream is walked from its genesis, so that a checkpoint never signs a broken chain."""
    heads = await store.stream_heads()
    names = sorted(set(heads) | set(await store.event_streams()))
    found: dict[str, Head] = {}
    problems: list[ChainProblem] = []
    for name in names:
        rows = [row async for row in store.raw_rows(name)]
        _, stream_problems = check_chain(name, rows, heads.get(name))
        problems.extend(stream_problems)
        if rows:
            found[name] = Head(rows[-1].version, rows[-1].hash)
    return found, problems


def _signed_text(body: dict[str, Any]) -> bytes:
    return canonical_json(body).encode("utf-8")


async def take_checkpoint(store: EventStore, key: Ed25519PrivateKey, *, now: datetime | None = None) -> dict[str, Any]:
    """A signed checkpoint of every stream's head. CheckpointRefused if any chain is broken."""
    heads, problems = await log_heads(store)
    if problems:
        raise CheckpointRefused(problems)
    body: dict[str, Any] = {
        "format": FORMAT,
        "store_id": await store.store_id(),
        "taken_at": format_time(now or datetime.now(UTC)),
        "streams": {name: {"version": head.version, "hash": head.hash} for name, head in sorted(heads.items())},
        "key_id": key_id(key.public_key()),
    }
    signature = key.sign(_signed_text(body))
    return {**body, "signature": base64.b64encode(signature).decode("ascii")}


def append_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Add one line to a checkpoint file (made if missing), flushed to disk before returning."""
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(canonical_json(checkpoint) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise CheckpointError(f"cannot write the checkpoints {path}: {exc.strerror}") from None


# --------------------------------------------------------------------------- checking them


def read_checkpoint_file(path: str | Path) -> list[tuple[int, str]]:
    """The non-blank lines of a checkpoint file, numbered from 1. CheckpointError if it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoints {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"cannot read the checkpoints {path}: not UTF-8 text") from None
    lines = [(number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if not lines:
        raise CheckpointError(f"{path} holds no checkpoints")
    return lines


def parse_checkpoints(
    lines: Sequence[tuple[int, str]], trusted: Ed25519PublicKey, *, source: str = "the file"
) -> tuple[list[Checkpoint], list[CheckpointProblem]]:
    """The lines whose signature the trusted key verifies, and a problem for each other line.

    CheckpointError when no line is a checkpoint at all (the wrong file was given)."""
    expected_key = key_id(trusted)
    checkpoints: list[Checkpoint] = []
    problems: list[CheckpointProblem] = []
    recognised = 0
    for number, text in lines:
        try:
            data = json.loads(text)
        except ValueError:
            problems.append(CheckpointProblem(number, "not a checkpoint: not JSON (the file was changed?)"))
            continue
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            problems.append(CheckpointProblem(number, f'not a checkpoint: no "format": {FORMAT!r}'))
            continue
        recognised += 1
        body = {name: value for name, value in data.items() if name != "signature"}
        if data.get("key_id") != expected_key:
            problems.append(
                CheckpointProblem(
                    number, f"signed by key {data.get('key_id')!r}, not by the trusted key {expected_key}"
                )
            )
            continue
        try:
            signature = base64.b64decode(str(data.get("signature", "")), validate=True)
            trusted.verify(signature, _signed_text(body))
        except (InvalidSignature, binascii.Error, ValueError):
            problems.append(CheckpointProblem(number, "the signature does not verify: the line was changed"))
            continue
        try:
            checkpoints.append(_checkpoint(number, body))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(CheckpointProblem(number, f"a signed line that is not a checkpoint: {exc}"))
    if not recognised:
        raise CheckpointError(f"{source} holds no schemalog checkpoints")
    return checkpoints, problems


def _checkpoint(number: int, body: dict[str, Any]) -> Checkpoint:
    streams: dict[str, Head] = {}
    for name, head in body["streams"].items():
        version, digest = head["version"], head["hash"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"stream {name!r}: bad version {version!r}")
        if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX:
            raise ValueError(f"stream {name!r}: bad hash {digest!r}")
        streams[str(name)] = Head(version, digest)
    return Checkpoint(number, str(body["store_id"]), str(body["taken_at"]), streams)


async def check_checkpoints(
    store: EventStore, checkpoints: Sequence[Checkpoint], chain_problems: Sequence[ChainProblem]
) -> list[CheckpointProblem]:
    """Whether the store is still the one checkpointed, and holds every checkpointed head.

    ``chain_problems``: what walking the chains found (verify_store); a checkpointed head counts as
    intact only if no chain problem lies at or below it. Each stream's first failing checkpointed
    version is reported (what lies above it cannot agree either).
    """
    problems: list[CheckpointProblem] = []
    store_id = await store.store_id()
    other_ids: dict[str, int] = {}
    for checkpoint in checkpoints:
        if checkpoint.store_id != store_id:
            other_ids.setdefault(checkpoint.store_id, checkpoint.line)
    for other, line in other_ids.items():
        problems.append(
            CheckpointProblem(line, f"taken of store {other}, but this store is {store_id} (another store swapped in?)")
        )
    broken: dict[str, int] = {}
    for chain_problem in chain_problems:
        broken[chain_problem.stream] = min(
            broken.get(chain_problem.stream, chain_problem.version), chain_problem.version
        )
    wanted: dict[str, dict[int, tuple[str, int]]] = {}
    for checkpoint in checkpoints:
        for name, head in checkpoint.streams.items():
            seen = wanted.setdefault(name, {}).setdefault(head.version, (head.hash, checkpoint.line))
            if seen[0] != head.hash:
                problems.append(
                    CheckpointProblem(
                        checkpoint.line,
                        f"this checkpoint and line {seen[1]} sign different events at this version",
                        name,
                        head.version,
                    )
                )
    present = set(await store.event_streams())
    for name in sorted(wanted):
        agreed = 0
        for version in sorted(wanted[name]):
            digest, line = wanted[name][version]
            found = await store.event_hash(name, version)
            since = f" (the last checkpointed version that agrees is {agreed})" if agreed else ""
            if name not in present:
                problem = "the stream is gone from the log (deleted or truncated)"
            elif found is None:
                problem = f"checkpointed, but the log has no version {version} (events dropped){since}"
            elif found != digest:
                problem = f"the log's event differs from the checkpointed one (history rewritten){since}"
            elif name in broken and broken[name] <= version:
                problem = f"the chain is broken at version {broken[name]}, below this checkpointed head"
            else:
                agreed = version
                continue
            problems.append(CheckpointProblem(line, problem, name, version))
            break
    return problems
