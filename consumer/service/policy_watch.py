"""The live (and shadow) policy: read, validated, compiled, and watched for changes.

A watcher thread hashes each policy file every `policy_reload_interval` seconds and at once when
`wake` is set (SIGHUP). It reads the path afresh each time, so a Kubernetes ConfigMap mount, which
swaps a `..data` symlink instead of writing the file, is seen like any edit. A valid change waits
in `pending` until the worker takes it between two batches (`take`): no batch is decided by a mix
of versions. An invalid or unreadable file keeps the policy in force, is logged once with every
problem, and is tried again when its content changes.

A policy's list files (`lists:` ... `file:`) are part of it: the hash covers the policy file and
every list file it names, so editing a list file reloads the policy, and a list file that has
gone missing is a rejected change (logged once) that keeps the policy in force.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from consumer.errors import ConfigError, PolicyError
from consumer.policy import CompiledPolicy, bundled_policy_text, compile_policy, load_policy
from consumer.policy.changes import describe_change
from consumer.policy.lists import MAX_LIST_FILE_BYTES
from consumer.policy.yamldoc import MAX_POLICY_BYTES
from consumer.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

Role = Literal["live", "shadow"]
#: Problems of a rejected file written into its log line; PolicyError already caps them at 100.
LOGGED_PROBLEMS = 100


def read_policy_bytes(path: Path) -> bytes:
    """The file's bytes (one byte over the size limit is enough to refuse it); ConfigError if unreadable."""
    try:
        with path.open("rb") as file:
            return file.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        msg = f"policy file {path}: cannot read: {exc.strerror or exc}"
        raise ConfigError(msg) from exc


def load_policy_file(path: Path | None) -> CompiledPolicy:
    """The policy at `path`, or the bundled default; PolicyError or ConfigError when it is not valid."""
    if path is None:
        return compile_policy(
            load_policy(bundled_policy_text(), "<bundled id-akar-import-closure>")
        )
    return _compile(read_policy_bytes(path), path, ListFiles(path))


class ListFiles:
    """Reads the list files a policy names, relative to the policy file's folder, and remembers
    what it read so the watcher can hash the policy with everything it depends on.

    Any path is accepted (`..` and absolute paths too): a list file is as trusted as the policy
    file that names it, and both come from the operator.
    """

    def __init__(self, policy: Path) -> None:
        self.folder = policy.parent
        #: (path as written, its bytes or b"" when unreadable, the error or "") in reading order
        self.read: list[tuple[str, bytes, str]] = []

    def __call__(self, name: str) -> bytes:
        """At most one byte past the list file limit, so a huge file costs no more than that."""
        path = self.folder / name
        try:
            # a FIFO or a device would block or never end: only a regular file is opened
            if not stat.S_ISREG(path.stat().st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            with path.open("rb") as file:
                data = file.read(MAX_LIST_FILE_BYTES + 1)
        except OSError as exc:
            self.read.append((name, b"", exc.strerror or str(exc)))
            raise
        self.read.append((name, data, ""))
        return data

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.read)

    def digest(self, raw: bytes) -> str:
        """sha256 of the policy's bytes and each list file read; the policy's alone without any."""
        return _digest(raw, self.read)

    def reread(self, names: tuple[str, ...]) -> None:
        """Read `names` again (the files the last load used), for `digest` without loading."""
        self.read = []
        for name in names:
            with contextlib.suppress(OSError):  # recorded with its error; the load reports it
                self(name)


@dataclass(frozen=True, slots=True)
class Policies:
    """What the worker decides with: the enforced policy and the candidate evaluated beside it."""

    live: CompiledPolicy
    shadow: CompiledPolicy | None = None


@dataclass(slots=True)
class _Watched:
    """One policy file: its policy in force, and the content last looked at."""

    role: Role
    path: Path | None  # None: the bundled policy, which never changes
    policy: CompiledPolicy
    seen: str  # sha256 of the bytes last read (list files too), or the error that stopped reading
    #: The list files the last load read (or tried to): hashed with the policy file each check.
    files: tuple[str, ...] = ()
    pending: CompiledPolicy | None = None
    rejected: bool = False


class PolicyWatch:
    """Owns the policies in force; the watcher thread finds changes, the worker applies them."""

    def __init__(
        self,
        live: Path | None,
        shadow: Path | None,
        metrics: Metrics,
        *,
        interval: float,
        wake: threading.Event | None = None,
        wall_clock: Callable[[], float],
    ) -> None:
        """Loads both files now: an invalid policy at start is an error (exit 2), not a wait."""
        self._metrics = metrics
        self._interval = interval
        self._wake = wake or threading.Event()
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._files = [self._first_load("live", live)]
        if shadow is not None:
            self._files.append(self._first_load("shadow", shadow))
        self._policies = Policies(
            self._files[0].policy, self._files[1].policy if shadow is not None else None
        )

    def _first_load(self, role: Role, path: Path | None) -> _Watched:
        raw = b"" if path is None else read_policy_bytes(path)
        files = None if path is None else ListFiles(path)
        policy = (
            load_policy_file(None) if files is None or path is None else _compile(raw, path, files)
        )
        self._metrics.set_policy(role, policy.policy_id, policy.version, self._wall_clock())
        log.info(
            "policy loaded",
            extra={"role": role, "policy": policy.policy_id, "version": policy.version},
        )
        if files is None:
            return _Watched(role, path, policy, _digest(raw))
        return _Watched(role, path, policy, files.digest(raw), files.names)

    @property
    def current(self) -> Policies:
        return self._policies

    # ---- the watcher's side ----

    def start(self) -> None:
        """Watch in a daemon thread (nothing to watch for the bundled policy alone)."""
        if all(f.path is None for f in self._files):
            return
        self._thread = threading.Thread(target=self._watch, name="policy-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _watch(self) -> None:
        while True:
            requested = self._wake.wait(self._interval or None)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.check(requested=requested)
            except Exception:  # the watcher must outlive any surprise; the policy in force stays
                log.exception("policy check failed")

    def check(self, *, requested: bool = False) -> None:
        """Look at every file once; `requested` (SIGHUP) also counts and logs "unchanged"."""
        for watched in self._files:
            if watched.path is not None:
                self._check_one(watched, watched.path, requested)

    def _check_one(self, watched: _Watched, path: Path, requested: bool) -> None:
        role = watched.role
        try:
            raw = read_policy_bytes(path)
        except ConfigError as exc:
            self._reject(watched, f"error: {exc}", [str(exc)])
            return
        files = ListFiles(path)
        files.reread(watched.files)
        if files.digest(raw) == watched.seen:
            if requested:
                self._unchanged(watched, "file unchanged")
            return
        files = ListFiles(path)
        try:
            policy = _compile(raw, path, files)
        except PolicyError as exc:
            self._reject(watched, files.digest(raw), list(exc.problems))
            return
        finally:
            watched.files = files.names
        watched.seen = files.digest(raw)
        with self._lock:
            enforced = watched.pending or watched.policy
        if policy.version == enforced.version:
            # same rules in another layout (comments, order of keys): nothing to swap
            if watched.rejected:
                self._metrics.policy_file_rejected.labels(role).set(0)
                watched.rejected = False
            self._unchanged(watched, "same policy version")
            return
        with self._lock:
            watched.pending = policy
        log.info(
            "policy change validated, applying at the next batch",
            extra={"role": role, "path": str(path), "version": policy.version},
        )

    def _reject(self, watched: _Watched, seen: str, problems: list[str]) -> None:
        if watched.rejected and seen == watched.seen:
            return  # already said: logged once per content
        watched.seen = seen
        watched.rejected = True
        self._metrics.policy_reloads.labels(watched.role, "rejected").inc()
        self._metrics.policy_file_rejected.labels(watched.role).set(1)
        log.error(
            "policy change rejected, keeping the policy in force",
            extra={
                "role": watched.role,
                "path": str(watched.path),
                "version": watched.policy.version,
                "problems": problems[:LOGGED_PROBLEMS],
            },
        )

    def _unchanged(self, watched: _Watched, why: str) -> None:
        self._metrics.policy_reloads.labels(watched.role, "unchanged").inc()
        log.info(
            "policy unchanged",
            extra={"role": watched.role, "version": watched.policy.version, "detail": why},
        )

    # ---- the worker's side ----

    def take(self) -> Policies | None:
        """The new policies when a change is pending, applied from now on; else None. Cheap."""
        if not any(f.pending is not None for f in self._files):
            return None
        with self._lock:
            for watched in self._files:
                if watched.pending is not None:
                    self._apply(watched, watched.pending)
                    watched.pending = None
        live = self._files[0].policy
        shadow = self._files[1].policy if len(self._files) > 1 else None
        self._policies = Policies(live, shadow)
        return self._policies

    def _apply(self, watched: _Watched, policy: CompiledPolicy) -> None:
        old = watched.policy
        watched.policy = policy
        watched.rejected = False
        self._metrics.policy_reloads.labels(watched.role, "applied").inc()
        self._metrics.set_policy(watched.role, policy.policy_id, policy.version, self._wall_clock())
        log.info(
            "policy reloaded",
            extra={
                "role": watched.role,
                "policy": policy.policy_id,
                "old_version": old.version,
                "version": policy.version,
                "changes": describe_change(old.model, policy.model).summary(),
            },
        )


def _compile(raw: bytes, path: Path, files: ListFiles) -> CompiledPolicy:
    return compile_policy(load_policy(raw, str(path), files))


def _digest(raw: bytes, files: Sequence[tuple[str, bytes, str]] = ()) -> str:
    """The policy file's sha256 when it names no list files (as before lists existed)."""
    digest = hashlib.sha256(raw)
    for name, data, error in files:
        digest.update(b"\0" + name.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(b"!" + error.encode() if error else data)
    return digest.hexdigest()
