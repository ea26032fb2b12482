"""Content-hash caching in ``<report>/.report-cache/``: plain files named by hash, no pickle.

Layout of the cache folder (``v1`` is the cache format; another version is ignored)::

    v1/objects/<sha256>.<ext>        bytes (font subsets, PDFs, EPUBs, PNGs), named by their own hash
    v1/entries/<kind>/<key>.json     {"key", "deps", "objects", "value"}: a cached result
    v1/digests.json                  stat signature → sha256 of large files (the bundled fonts) and objects

An entry's ``key`` is a hash of everything the result was computed from that is
known before computing it; ``deps`` are files found while computing it (the
images a chapter uses, the files WeasyPrint fetched) with their hashes, checked
again on every lookup. A file that cannot be read or parsed, or an object whose
bytes no longer match its name, is a miss: the result is computed again and
the damaged file replaced. Every write goes to a temporary file renamed into
place, so readers never see half a file, and two builds may share the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import re
import stat
import sys
import tempfile
import threading
import time
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from report import __version__

CACHE_DIR_NAME = ".report-cache"
CACHE_FORMAT = "v1"
MAX_CACHE_BYTES = 768 * 1024 * 1024  # least recently used files go first beyond this
MEMO_MIN_BYTES = 256 * 1024  # files this large (the fonts) have their hash remembered by stat signature
_TOUCH_SECONDS = 3600.0  # how finely prune knows when a file was last used
# The files this process found (or made) used within the hour, by path, and when: marked used
# again within it without a system call (the build server reads the last build's entries between
# builds, and a build it forks marks hundreds used: a stat each).
_USED_SINCE: dict[str, float] = {}
_SIZE_RECORD = "size.json"  # what the cache's files came to at the last walk of prune, and when
_TEMPORARY_FOLDER = "tmp"  # where files are written before they are renamed into place
_RACY_SECONDS = 2.0  # a file modified this recently may change again within its mtime's precision
PACKAGE_DIR = Path(__file__).resolve().parent
# Third-party code whose version can change what a build produces.
DISTRIBUTIONS = (
    "weasyprint", "pydyf", "tinycss2", "cssselect2", "fonttools", "uharfbuzz", "ebooklib", "lxml", "jinja2",
    "markupsafe", "markdown-it-py", "mdit-py-plugins", "nh3", "pyyaml", "pillow", "pypdfium2", "pikepdf",
    "pygments", "latex2mathml", "ziamath", "ziafont", "vl-convert-python",
)  # fmt: skip


# --- hashing --------------------------------------------------------------------------------


def digest(*parts: str | bytes) -> str:
    """SHA-256 of the parts, each length-prefixed so that ("ab", "c") ≠ ("a", "bc")."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "big"))
        hasher.update(data)
    return hasher.hexdigest()


def json_digest(value: Any) -> str:
    return digest(json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


def bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@cache
def _module_path(name: str) -> Path | None:
    parts = name.split(".")[1:]
    candidate = PACKAGE_DIR.joinpath(*parts)
    if candidate.with_suffix(".py").is_file():
        return candidate.with_suffix(".py")
    if (candidate / "__init__.py").is_file():
        return candidate / "__init__.py"
    return None


# ``from report.x import a, b`` and ``import report.x``, at any indent (imports inside
# functions count): a regular expression reads them twenty times faster than ``ast``.
_REPORT_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(report(?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)|import[ \t]+(report(?:\.\w+)*))",
    re.MULTILINE,
)


def _modules_reached(modules: Iterable[str]) -> dict[str, Path]:
    """The files of ``modules`` and of every ``report`` module they import, recursively."""
    seen: dict[str, Path] = {}
    pending = list(modules)
    while pending:
        name = pending.pop()
        path = _module_path(name)
        if path is None or name in seen:
            continue
        seen[name] = path
        pending.extend(_report_imports(path))
    return seen


def read_builder_files() -> None:
    """Everything :func:`code_fingerprint` reads, read and hashed now: by the build server, once,
    so that the builds it forks read and hash none of it (reading, 25 ms a build; hashing, the
    fingerprints a build makes, 1.9 ms against 0.6 ms). The server ends when a file of the
    builder changes, so what it read stays the builder's."""
    every_module = (
        ".".join(("report", *path.relative_to(PACKAGE_DIR).with_suffix("").parts)).removesuffix(".__init__")
        for path in PACKAGE_DIR.rglob("*.py")
    )
    for path in _modules_reached(every_module).values():
        _builder_file_digest(path)
    for path in _data_files():
        _builder_file_digest(path)
    _installed_versions()


@cache
def _builder_file(path: Path) -> bytes:
    """A module, template or style of the builder: read once a process."""
    return path.read_bytes()


@cache
def _builder_file_digest(path: Path) -> str:
    """A file of the builder's digest (what a fingerprint hashes): made once a process."""
    return bytes_digest(_builder_file(path))


@cache
def _data_files() -> tuple[Path, ...]:
    """The builder's templates and styles."""
    return tuple(
        path
        for folder in ("templates", "styles")
        for path in sorted((PACKAGE_DIR / folder).rglob("*"))
        if path.is_file()
    )


@cache
def _report_imports(path: Path) -> frozenset[str]:
    names: set[str] = set()
    for match in _REPORT_IMPORT.finditer(_builder_file(path).decode("utf-8")):
        module, imported, plain = match.groups()
        if plain:
            names.add(plain)
            continue
        names.add(module)
        for alias in re.sub(r"#[^\n]*", "", imported).strip("() \n").split(","):
            if name := alias.split(" as ")[0].strip():
                names.add(f"{module}.{name}")
    return frozenset(names)


@cache
def _installed_versions() -> dict[str, str]:
    """Installed distributions' versions, by normalised name, from the names of their
    ``.dist-info`` folders (one directory listing, where ``importlib.metadata`` reads
    every distribution's metadata file)."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                distribution, _, version = name.removesuffix(".dist-info").partition("-")
                found.setdefault(_normalised(distribution), version)
    return found


def _normalised(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


@cache
def code_fingerprint(*modules: str, data: bool = False) -> str:
    """A hash of the source of ``modules`` and every ``report`` module they import (found by
    reading their imports, recursively), the versions of the third-party packages, and with
    ``data`` the built-in templates and styles. The "parser version" of a parse-cache key."""
    seen = _modules_reached(modules)
    parts: list[str | bytes] = [__version__]
    for name in sorted(seen):
        parts += [name, _builder_file_digest(seen[name])]
    if data:
        for path in _data_files():
            parts += [path.relative_to(PACKAGE_DIR).as_posix(), _builder_file_digest(path)]
    versions = _installed_versions()
    for distribution in DISTRIBUTIONS:
        parts += [distribution, versions.get(_normalised(distribution), "-")]
    return digest(*parts)


# --- counters -------------------------------------------------------------------------------


class Stats:
    """Cache hits and misses by kind of entry: what tests read to prove what was rebuilt."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, kind: str, hit: bool) -> None:
        with self._lock:
            (self.hits if hit else self.misses)[kind] += 1

    def __repr__(self) -> str:
        kinds = sorted(set(self.hits) | set(self.misses))
        return "Stats(" + ", ".join(f"{k}: {self.hits[k]} hit/{self.misses[k]} miss" for k in kinds) + ")"


# --- the cache ------------------------------------------------------------------------------


class Cache:
    """The cache folder of one report. ``read=False`` computes everything afresh (``--no-cache``)
    but still stores results, so that the next build can use them; a result stored in this
    build is read back (it is afresh): what a PDF found it needs besides, say."""

    def __init__(self, directory: Path, *, read: bool = True, stats: Stats | None = None) -> None:
        self.root = directory.resolve()
        self.directory = self.root / CACHE_FORMAT
        self.read = read
        self.stats = stats or Stats()
        self.started = time.time()
        self._memo: dict[str, list[Any]] | None = None
        self._memo_changed = False
        self._lock = threading.Lock()
        self._stored: set[Path] = set()  # the entries this build wrote
        self._used: set[str] = set()  # the entries and objects this build read (never pruned)
        self.written = 0  # the bytes of the entries and objects this build wrote (see prune)

    # --- file digests ------------------------------------------------------------------

    def file_digest(self, path: Path, remember: bool = False) -> str | None:
        """SHA-256 of a file's bytes; None when it is not a file. Large files (the fonts), and
        any the caller asks to ``remember``, are hashed once per stat signature; a file changed
        within the last seconds never is trusted."""
        try:
            status = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(status.st_mode):
            return None
        if status.st_size < MEMO_MIN_BYTES and not remember:
            return _hash_file(path)
        signature = [status.st_size, status.st_mtime_ns, status.st_ino, status.st_ctime_ns]
        memo = self._load_memo()
        key = str(path)
        with self._lock:
            known = memo.get(key)
        if known is not None and known[:4] == signature:
            return str(known[4])
        value = _hash_file(path)
        if time.time() - status.st_mtime > _RACY_SECONDS:
            with self._lock:
                memo[key] = [*signature, value]
                self._memo_changed = True
        return value

    def tree_digest(self, folder: Path, exclude: Iterable[str] = ()) -> str | None:
        """A hash of every file under ``folder`` (names and bytes) but hidden ones and those
        named in ``exclude``; None when there are none (or no folder)."""
        if not folder.is_dir():
            return None
        excluded = set(exclude)
        parts: list[str] = []
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith(".") and path.name not in excluded:
                parts += [path.relative_to(folder).as_posix(), self.file_digest(path) or ""]
        return digest(*parts) if parts else None

    def input_digest(self, name: str) -> str | None:
        """The digest of a recorded input: ``file:/abs/path`` or ``tree:/abs/folder``; a file's
        remembered by its stat signature (every build checks its inputs, and an entry's)."""
        kind, _, path = name.partition(":")
        return self.tree_digest(Path(path)) if kind == "tree" else self.file_digest(Path(path), remember=True)

    def _load_memo(self) -> dict[str, list[Any]]:
        if self._memo is None:
            memo = _read_json(self.directory / "digests.json")
            self._memo = memo if isinstance(memo, dict) else {}
        return self._memo

    def save(self) -> None:
        """Write what was learnt about file digests (never called by a build that changed nothing)."""
        with self._lock:
            if not self._memo_changed or self._memo is None:
                return
            memo = dict(self._memo)
            self._memo_changed = False
        self._write(self.directory / "digests.json", json.dumps(memo, sort_keys=True).encode())

    # --- entries -----------------------------------------------------------------------

    def load(self, kind: str, key: str) -> dict[str, Any] | None:
        """The value stored under ``key`` if it is intact and its dependencies are unchanged."""
        found = self.load_with_deps(kind, key)
        return found[0] if found is not None else None

    def load_with_deps(self, kind: str, key: str) -> tuple[dict[str, Any], dict[str, str | None]] | None:
        """:meth:`load`, and the entry's dependencies as :meth:`unchanged` checks them (a value
        kept in memory is still checked against them)."""
        path = self._entry_path(kind, key)
        entry = _read_json(path) if self.read or path in self._stored else None
        found = self._check(entry, key, path)
        self.stats.count(kind, found is not None)
        return found

    def kept(self, kind: str, key: str) -> None:
        """The entry's value was found in memory (and its dependencies unchanged): a hit, and
        the entry stays as recently used as if it had been read."""
        self.stats.count(kind, True)
        self._use(self._entry_path(kind, key))

    def kept_object(self, path: Path) -> bool:
        """Whether the object at ``path``, known in memory to be intact, is still there (the
        cache may have been removed by hand): if so, it is used by this build (see :meth:`kept`)."""
        if not path.exists():
            return False
        self._use(path)
        return True

    def unchanged(self, deps: Mapping[str, str | None]) -> bool:
        """Whether each dependency (``file:/path`` or ``tree:/folder``) still hashes as given."""
        return all(self.input_digest(name) == expected for name, expected in deps.items())

    def _check(self, entry: Any, key: str, path: Path) -> tuple[dict[str, Any], dict[str, str | None]] | None:
        if entry is None:
            return None
        if (
            not isinstance(entry, dict)
            or entry.get("key") != key
            or not isinstance(entry.get("value"), dict)
            or not isinstance(entry.get("deps"), dict)
            or not isinstance(entry.get("objects"), list)
        ):
            path.unlink(missing_ok=True)  # damaged: never written like this
            return None
        deps = {self._local(name): expected for name, expected in entry["deps"].items()}
        if not self.unchanged(deps):
            return None
        for name in entry["objects"]:
            if self.object_path(str(name)) is None:
                return None
        self._use(path)
        value: dict[str, Any] = entry["value"]
        return value, deps

    def text(self, kind: str, key: str, make: Callable[[], str]) -> str:
        """The text stored under ``key``, else ``make()``'s, stored there (a drawing that costs
        more than reading it: a formula's or a chart's SVG)."""
        value = self.load(kind, key)
        if value is not None and isinstance(found := value.get("text"), str):
            return found
        made = make()
        self.store(kind, key, {"text": made})
        return made

    def store(
        self,
        kind: str,
        key: str,
        value: dict[str, Any],
        deps: Mapping[str, str | None] = {},
        objects: Iterable[str] = (),
    ) -> None:
        portable = {self._portable(name): value for name, value in deps.items()}
        entry = {"key": key, "deps": portable, "objects": list(objects), "value": value}
        data = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode()
        path = self._entry_path(kind, key)
        self._write(path, data)
        self._stored.add(path)
        self.written += len(data)

    def _portable(self, name: str) -> str:
        """Dependencies inside the report are kept relative to it: a copied report folder
        must check its own files, not the original's."""
        kind, _, path = name.partition(":")
        base = self.root.parent
        if Path(path).is_relative_to(base):
            return f"{kind}:./{Path(path).relative_to(base).as_posix()}"
        return name

    def _local(self, name: str) -> str:
        kind, _, path = name.partition(":")
        return f"{kind}:{self.root.parent / path[2:]}" if path.startswith("./") else name

    def _entry_path(self, kind: str, key: str) -> Path:
        return self.directory / "entries" / kind / f"{key}.json"

    # --- objects -----------------------------------------------------------------------

    def put_object(self, data: bytes, suffix: str) -> str:
        """Store bytes under their own hash; returns the object's name (``<sha256><suffix>``)."""
        name = f"{bytes_digest(data)}{suffix}"
        if self.object_path(name) is None:
            self._write(self.directory / "objects" / name, data)
            self.written += len(data)
        return name

    def object_path(self, name: str) -> Path | None:
        """The object's file if its bytes still match its name (a damaged one is removed). It
        is hashed again only when its stat signature changed (see :meth:`file_digest`): a
        build reads hundreds, the parts of the PDF above all."""
        path = self.directory / "objects" / Path(name).name
        if self.file_digest(path, remember=True) != name.split(".", 1)[0]:
            path.unlink(missing_ok=True)
            return None
        self._use(path)
        return path

    def object_bytes(self, name: str) -> bytes | None:
        path = self.object_path(name)
        try:
            return path.read_bytes() if path is not None else None
        except OSError:
            return None

    def _use(self, path: Path) -> None:
        """Mark as used by this build, and as recently used for :meth:`prune` (to the hour: a
        file touched on every build would change its stat signature on every build)."""
        name = str(path)
        self._used.add(name)
        if _USED_SINCE.get(name, 0.0) >= self.started - _TOUCH_SECONDS:
            return
        with contextlib.suppress(OSError):
            used = path.stat().st_mtime
            if used < self.started - _TOUCH_SECONDS:
                os.utime(path)
                used = time.time()
            _USED_SINCE[name] = used

    # --- housekeeping ------------------------------------------------------------------

    def _write(self, path: Path, data: bytes) -> None:
        """``path`` written whole, through a temporary file in the cache's folder for them: made
        among the thousands of files of an entry kind, one took 0.3 ms, ten times as long (the
        EPUB pages stored after a page added in the middle of the 586-page report: 80 of them)."""
        _write_atomic(path, data, self.directory / _TEMPORARY_FOLDER)

    def prune(self, budget: int = MAX_CACHE_BYTES) -> int:
        """Remove the least recently used files beyond ``budget`` bytes, down to three quarters
        of it (left at its budget, the cache would be walked again after the next build, which
        writes something), never one this build used; returns how many were removed. It runs
        after every build, but walks the folders (one system call a file: 30 ms a build at 600
        pages) only when the cache may be over the budget — the total the last walk found, and what the builds since wrote — or that
        walk is an hour old (for what is written by other means: font subsets, fetched images)."""
        record = _read_json(self.directory / _SIZE_RECORD)
        if isinstance(record, dict) and {type(record.get("total")), type(record.get("walked"))} <= {int, float}:
            total = int(record["total"]) + self.written
            if total <= budget and 0 <= self.started - record["walked"] < _TOUCH_SECONDS:
                if self.written:
                    self._record_size(total, record["walked"])
                return 0
        files = []
        for folder in (self.directory / "objects", self.directory / "entries"):
            for parent, _, names in os.walk(folder):
                for name in names:
                    path = os.path.join(parent, name)
                    with contextlib.suppress(OSError):
                        status = os.stat(path)
                        files.append((status.st_mtime, status.st_size, path))
        for parent, _, names in os.walk(self.directory / _TEMPORARY_FOLDER):
            for name in names:  # left by a writer killed before it renamed its file
                path = os.path.join(parent, name)
                with contextlib.suppress(OSError):
                    if os.stat(path).st_mtime < self.started - _TOUCH_SECONDS:
                        os.unlink(path)
        total = sum(size for _, size, _ in files)
        kept = budget if total <= budget else budget * 3 // 4
        removed = 0
        memo = self._load_memo()
        for mtime, size, path in sorted(files):
            if total <= kept or mtime >= self.started - 1:
                break
            if path in self._used:
                continue
            with contextlib.suppress(OSError):
                os.unlink(path)
            with self._lock:
                if memo.pop(path, None) is not None:
                    self._memo_changed = True
            total -= size
            removed += 1
        self._record_size(total, self.started)
        return removed

    def _record_size(self, total: int, walked: float) -> None:
        self._write(self.directory / _SIZE_RECORD, json.dumps({"total": total, "walked": walked}).encode())


def _hash_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def _read_json(path: Path) -> Any:
    """Parsed JSON, or None when the file is missing, unreadable or not valid JSON."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _write_atomic(path: Path, data: bytes, temporary_folder: Path | None = None) -> None:
    """``data`` written to ``path`` through a temporary file (in ``temporary_folder``, on the same
    file system, else beside it) renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if temporary_folder is not None:
        temporary_folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=temporary_folder or path.parent, prefix=".tmp-")
    try:
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place."""
    _write_atomic(path, data)


def read_json(path: Path) -> Any:
    return _read_json(path)


# --- plain data <-> the pipeline's frozen dataclasses -------------------------------------------


def to_plain(value: Any, root: Path) -> Any:
    """A model value as JSON data: dataclasses as objects, tuples as lists, enums as their value,
    paths relative to ``root``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_plain(getattr(value, field.name), root) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return value.relative_to(root).as_posix()
    if isinstance(value, (tuple, list)):
        return [to_plain(item, root) for item in value]
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, root) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__}")


@cache
def field_types(kind: type) -> dict[str, Any]:
    """The initialised fields of a dataclass and their types (annotations resolved once)."""
    hints = typing.get_type_hints(kind)
    return {field.name: hints[field.name] for field in dataclasses.fields(kind) if field.init}


def from_plain(kind: Any, data: Any, root: Path) -> Any:
    """The inverse of :func:`to_plain`, guided by the type annotations of the dataclasses.
    Raises ``ValueError`` when the data does not fit (a cache written by other code)."""
    return _reader(kind)(data, root)


_Reader = typing.Callable[[Any, Path], Any]


@cache
def _reader(kind: Any) -> _Reader:
    """What reads plain data as ``kind``: worked out once per type (reading the annotations
    anew for every value took half the time of a warm build's parse stage)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return _union_reader(kind, [_reader(option) for option in typing.get_args(kind) if option is not type(None)])
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            if args[0] in _SCALARS:
                return _scalars_reader(kind, _SCALARS[args[0]], None)
            item = _reader(args[0])
            return lambda data, root: tuple(item(value, root) for value in _list(data))
        if args[0] in _SCALARS and all(arg == args[0] for arg in args):
            return _scalars_reader(kind, _SCALARS[args[0]], len(args))
        items = [_reader(arg) for arg in args]
        return lambda data, root: tuple(read(value, root) for read, value in zip(items, _list(data), strict=True))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _dataclass_reader(kind)
    if kind is Path:
        return _path
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return lambda data, root: kind(data)
    if (allowed := _SCALARS.get(kind)) is not None:
        return lambda data, root: data if type(data) in allowed else _wrong(kind)
    if kind is Any:
        return lambda data, root: data
    raise TypeError(f"cannot read a cached {kind}")


def _scalars_reader(kind: Any, allowed: frozenset[type], count: int | None) -> _Reader:
    """A tuple of numbers or names (``count`` of them, or any number): checked in one go."""

    def read(data: Any, root: Path) -> Any:
        if set(map(type, _list(data))) <= allowed and (count is None or len(data) == count):
            return tuple(data)
        _wrong(kind)

    return read


def _union_reader(kind: Any, options: list[_Reader]) -> _Reader:
    optional = type(None) in typing.get_args(kind)

    def read(data: Any, root: Path) -> Any:
        if data is None and optional:
            return None
        for option in options:
            with contextlib.suppress(ValueError, TypeError):
                return option(data, root)
        raise ValueError(f"{data!r} fits none of {kind}")

    return read


def _dataclass_reader(kind: type) -> _Reader:
    # Each field: its name, the types a scalar may have (checked here: a call per scalar took
    # most of the time), else its reader.
    fields: list[tuple[str, frozenset[type] | None, _Reader | None]] = []
    names: set[str] = set()

    def read(data: Any, root: Path) -> Any:
        if not names:  # the fields' readers worked out on first use: a dataclass may contain itself
            hints = field_types(kind)
            fields.extend(
                (name, _SCALARS.get(hint), None if hint in _SCALARS else _reader(hint)) for name, hint in hints.items()
            )
            names.update(hints)
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {kind.__name__}")
        if data.keys() != names:
            raise ValueError(f"{kind.__name__} fields changed")
        values = {}
        for name, allowed, read_field in fields:
            value = data[name]
            if read_field is not None:
                value = read_field(value, root)
            elif type(value) not in allowed:  # type: ignore[operator]
                _wrong(f"{kind.__name__}.{name}")
            values[name] = value
        return kind(**values)

    return read


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise ValueError("expected a list")
    return data


def _path(data: Any, root: Path) -> Path:
    if not isinstance(data, str):
        raise ValueError("expected a path")
    return root / data


# The types plain data of a scalar type may have (a whole float is written as an integer).
_SCALARS: dict[Any, frozenset[type]] = {
    str: frozenset({str}),
    int: frozenset({int}),
    float: frozenset({float, int}),
    bool: frozenset({bool}),
}


def _wrong(what: Any) -> NoReturn:
    raise ValueError(f"plain data that does not fit {what}")
