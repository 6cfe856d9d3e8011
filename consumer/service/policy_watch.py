"""The live (and shadow) policy: read, validated, compiled, and watched for changes.

A watcher thread hashes each policy file every `policy_reload_interval` seconds and at once when
`wake` is set (SIGHUP). It reads the path afresh each time, so a Kubernetes ConfigMap mount, which
swaps a `..data` symlink instead of writing the file, is seen like any edit. A valid change waits
in `pending` until the worker takes it between two batches (`take`): no batch is decided by a mix
of versions. An invalid or unreadable file keeps the policy in force, is logged once with every
problem, and is tried again when its content changes. A policy set (consumer.policy.sets) is
read with every layer file it names, and hashed with them: an edit to any of them is a change.

A policy's list files (`lists:` ... `file:`, in a single policy or any layer) are part of it too:
the hash covers every list file the last load read, so editing a list file reloads the policy,
and a list file that has gone missing is a rejected change (logged once) that keeps the policy
in force.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from consumer.errors import ConfigError, PolicyError
from consumer.policy import compile_policy, load_policy
from consumer.policy.bundled import BUNDLED_POLICIES, bundled_name, load_bundled
from consumer.policy.enforced import Enforced
from consumer.policy.lists import MAX_LIST_FILE_BYTES
from consumer.policy.set_explain import change_summary
from consumer.policy.sets import Unreadable, is_policy_set, load_set, parse_set
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


def load_policy_file(path: Path | None) -> Enforced:
    """The policy or policy set at `path`, the bundled one `path` names as `bundled:NAME`, or
    the bundled default; PolicyError or ConfigError when it is not valid."""
    if path is None:
        return load_bundled(BUNDLED_POLICIES[0])
    if (name := bundled_name(path)) is not None:
        return load_bundled(name)
    return _compile(read_policy_sources(path), path, ListFiles(path))


class ListFiles:
    """Reads the list files a policy names, relative to the policy (or layer) file's folder, and
    remembers what it read (by the path it opened) so the watcher can hash the policy with
    everything it depends on. One record is shared by a set's layers (`for_layer`).

    Any path is accepted (`..` and absolute paths too): a list file is as trusted as the policy
    file that names it, and both come from the operator.
    """

    def __init__(self, policy: Path, read: list[tuple[str, bytes, str]] | None = None) -> None:
        self.folder = policy.parent
        #: (path opened, its bytes or b"" when unreadable, the error or "") in reading order
        self.read: list[tuple[str, bytes, str]] = [] if read is None else read

    def for_layer(self, layer: str) -> ListFiles:
        """The reader of a set's layer: relative to the layer file, recording here."""
        return ListFiles(self.folder / layer, self.read)

    def __call__(self, name: str) -> bytes:
        return self._read(self.folder / name)

    def _read(self, path: Path) -> bytes:
        """At most one byte past the list file limit, so a huge file costs no more than that."""
        try:
            # a FIFO or a device would block or never end: only a regular file is opened
            if not stat.S_ISREG(path.stat().st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            with path.open("rb") as file:
                data = file.read(MAX_LIST_FILE_BYTES + 1)
        except OSError as exc:
            self.read.append((str(path), b"", exc.strerror or str(exc)))
            raise
        self.read.append((str(path), data, ""))
        return data

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.read)

    def reread(self, names: tuple[str, ...]) -> None:
        """Read `names` again (the files the last load used), for the digest without loading."""
        self.read.clear()
        for name in names:
            with contextlib.suppress(OSError):  # recorded with its error; the load reports it
                self._read(Path(name))


# -- policy sets (consumer.policy.sets): the set file and every layer file it names ----------------


@dataclass(frozen=True, slots=True)
class PolicySources:
    """The bytes a policy path stands for: the file, and for a set each layer's (or why not)."""

    raw: bytes
    layers: tuple[bytes | Unreadable, ...] = ()

    def digest(self) -> str:
        """sha256 over the file and every layer (or its read error): any edit is a change."""
        hasher = hashlib.sha256(self.raw)
        for layer in self.layers:
            text = layer.message.encode() if isinstance(layer, Unreadable) else layer
            hasher.update(hashlib.sha256(text).digest())
        return hasher.hexdigest()


def read_policy_sources(path: Path) -> PolicySources:
    """The file's bytes and, when it is a policy set, each layer's; ConfigError if the file
    itself is unreadable (a layer that is becomes an Unreadable, reported by load_set)."""
    raw = read_policy_bytes(path)
    if not is_policy_set(raw):
        return PolicySources(raw)
    try:
        paths = parse_set(raw, str(path)).paths
    except PolicyError:
        return PolicySources(raw)  # _compile reports the set file's problems
    seen: dict[Path, int] = {}
    layers = tuple(_read_layer(path, i, layer, seen) for i, layer in enumerate(paths))
    return PolicySources(raw, layers)


def _read_layer(
    set_path: Path, index: int, layer: str, seen: dict[Path, int]
) -> bytes | Unreadable:
    """A layer's bytes; relative paths are relative to the set file. `seen` maps the files
    already read to their layer index: one file under two spellings is read once, and refused."""
    path = set_path.parent / layer
    try:
        resolved = path.resolve()
        if resolved == set_path.resolve():
            return Unreadable("is the set file itself; a set cannot include itself")
        if resolved in seen:
            return Unreadable(f"is the same file as layers[{seen[resolved]}]")
        seen[resolved] = index
        if not path.exists():
            return Unreadable(f"no such file: {path}")
        if not path.is_file():  # a FIFO or a device would block or never end
            return Unreadable(f"not a regular file: {path}")
    except (OSError, RuntimeError, ValueError) as exc:
        # a symlink loop (RuntimeError before Python 3.13), a NUL byte in the path (ValueError)
        return Unreadable(f"cannot resolve {path}: {exc}")
    try:
        return read_policy_bytes(path)
    except ConfigError as exc:
        return Unreadable(str(exc))


@dataclass(frozen=True, slots=True)
class Policies:
    """What the worker decides with: the enforced policy and the candidate evaluated beside it."""

    live: Enforced
    shadow: Enforced | None = None


@dataclass(slots=True)
class _Watched:
    """One policy file: its policy in force, and the content last looked at."""

    role: Role
    path: Path | None  # None: a bundled policy (or `bundled:NAME`), which never changes
    policy: Enforced
    seen: str  # sha256 of the bytes last read (layers' and list files too), or the read error
    pending: Enforced | None = None
    #: The list files the last load read (or tried to): hashed with the policy each check.
    files: tuple[str, ...] = ()
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
        if path is None or bundled_name(path) is not None:
            policy = load_policy_file(path)  # shipped in the package: never changes, not watched
            path, sources, files = None, PolicySources(b""), None
        else:
            sources, files = read_policy_sources(path), ListFiles(path)
            policy = _compile(sources, path, files)
        self._metrics.set_policy(role, policy.policy_id, policy.version, self._wall_clock())
        log.info(
            "policy loaded",
            extra={"role": role, "policy": policy.policy_id, "version": policy.version},
        )
        names = () if files is None else files.names
        return _Watched(role, path, policy, _digest(sources, files), files=names)

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
            sources = read_policy_sources(path)
        except ConfigError as exc:
            self._reject(watched, f"error: {exc}", [str(exc)])
            return
        files = ListFiles(path)
        files.reread(watched.files)
        if _digest(sources, files) == watched.seen:
            if requested:
                self._unchanged(watched, "file unchanged")
            return
        files = ListFiles(path)
        try:
            policy = _compile(sources, path, files)
        except PolicyError as exc:
            watched.files = files.names
            # _reject records the digest: it logs once per content, so a new invalid content is
            # logged again (it must not see its own digest as already said)
            self._reject(watched, _digest(sources, files), list(exc.problems))
            return
        watched.files, watched.seen = files.names, _digest(sources, files)
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

    def _apply(self, watched: _Watched, policy: Enforced) -> None:
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
                "changes": change_summary(old, policy),
            },
        )


def _compile(sources: PolicySources, path: Path, files: ListFiles) -> Enforced:
    if sources.layers or is_policy_set(sources.raw):
        return load_set(sources.raw, str(path), sources.layers, files.for_layer)
    return compile_policy(load_policy(sources.raw, str(path), files))


def _digest(sources: PolicySources, files: ListFiles | None = None) -> str:
    """The sources' digest, extended by every list file read (unchanged when there are none)."""
    if files is None or not files.read:
        return sources.digest()
    hasher = hashlib.sha256(sources.digest().encode())
    for name, data, error in files.read:
        hasher.update(b"\0" + name.encode("utf-8", "surrogateescape") + b"\0")
        hasher.update(b"!" + error.encode() if error else hashlib.sha256(data).digest())
    return hasher.hexdigest()
