"""``fusion``: several extractors' pooled outputs side by side, one vector per recording.

Each part is any registered extractor (a sequence part contributes its mean + std statistics,
as pooled models see it). Standardisation is deliberately *not* done here: statistics computed at
extraction time would come from every extracted recording, test speakers included. The trainer
already z-scores every input dimension with statistics of the training speakers only (refitted
in each cross-validation fold), which standardises each part of a fusion without leaking.
``scaling: l2`` adds a per-recording transform that needs no statistics: each part divided by its
own L2 norm, so parts of very different magnitude enter on an equal footing.

Over files (``extract_features``), each part is extracted as if named alone (``compose_files``):
from its own cache, keyed by file content, so a fusion of features already extracted for a study
costs a concatenation, and a part extracted for a fusion serves studies that name it alone.
Over waveforms (``transform``: predicting from raw audio) parts are cached by the decoded
waveform's content (``<cache>/fusion-parts/<part id>-<hash>/``, pooled vectors only). The
fusion's own vectors are cached like any extractor's.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechprint.core.errors import ConfigError
from speechprint.features.base import FEATURES, Extractor, make_extractor, pool_statistics
from speechprint.features.cache import FeatureCache, resolve_cache_dir
from speechprint.features.derived import ExtractPart, Outcome, derived_outcomes

log = logging.getLogger(__name__)

SCALINGS = ("none", "l2")


def _part_spec(part: Any, index: int) -> dict[str, Any]:
    """``"name"`` or ``{name, params}`` -> ``{"name": ..., "params": {...}}`` (canonical)."""
    if isinstance(part, str):
        part = {"name": part}
    if not isinstance(part, dict) or not isinstance(part.get("name"), str):
        raise ConfigError(
            f"fusion: parts[{index}] must be a name or {{name, params}}, got {part!r}"
        )
    unknown = sorted(set(part) - {"name", "params"})
    if unknown:
        raise ConfigError(
            f"fusion: parts[{index}] has unknown key(s) {unknown}; valid: name, params"
        )
    return {"name": part["name"], "params": dict(part.get("params") or {})}


def wave_key(wave: np.ndarray) -> str:
    """Content hash of a decoded waveform (float32 bytes)."""
    data = np.ascontiguousarray(wave, dtype=np.float32)
    return hashlib.blake2b(data.tobytes(), digest_size=20).hexdigest()


@FEATURES.register("fusion")
@dataclass
class Fusion(Extractor):
    """Concatenated pooled outputs of ``parts``, float32 ``(sum of part dims,)``.

    ``parts``: a list of extractor names or ``{name, params}``, e.g. ``[{name: whisper_encoder,
    params: {model: base}}, whisper_language, speaker_embedding]``; every part must decode at
    this extractor's ``sample_rate``. ``scaling``: ``none`` or ``l2`` (see the module notes).
    Part caches live under ``$SPEECHPRINT_CACHE_DIR`` (else the default cache folder): an
    extractor does not see the ``cache_dir`` given to ``extract_features``.
    """

    version = 1
    kind = "pooled"

    sample_rate: int = 16000
    # The default is only a runnable example (no extra needed); studies name their own parts.
    parts: list[Any] = field(default_factory=lambda: ["mfcc_mean", "mfcc_deltas"])
    scaling: str = "none"

    def __post_init__(self) -> None:
        if not self.parts:
            raise ConfigError("fusion: parts must name at least one extractor")
        if self.scaling not in SCALINGS:
            raise ConfigError(
                f"fusion: scaling must be one of {', '.join(SCALINGS)}, got {self.scaling!r}"
            )
        self.parts = [_part_spec(part, i) for i, part in enumerate(self.parts)]
        for index, extractor in enumerate(self.extractors()):
            if extractor.sample_rate != self.sample_rate:
                raise ConfigError(
                    f"fusion: parts[{index}] ({extractor.name}) decodes at {extractor.sample_rate} Hz, "
                    f"the fusion at sample_rate={self.sample_rate}"
                )

    def extractors(self) -> list[Extractor]:
        """The parts, built (their parameters checked by ``make_extractor``)."""
        return [make_extractor(part["name"], part["params"]) for part in self.parts]

    def transform(self, wave: np.ndarray) -> np.ndarray:
        return self.transform_many([wave])[0]

    def transform_many(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        keys = [wave_key(w) for w in waves]
        columns = [self._part_vectors(part, waves, keys) for part in self.extractors()]
        return [np.concatenate([column[i] for column in columns]) for i in range(len(waves))]

    def _part_vectors(
        self, part: Extractor, waves: list[np.ndarray], keys: list[str]
    ) -> list[np.ndarray]:
        """One part's pooled vectors: cached ones loaded, the rest computed together and saved.

        Only pooled vectors are kept (a sequence part's frames would be GBs): a sequence part's
        statistics are stored as one ``(1, 2 * dim)`` row, the 2-D shape its cache expects.
        """
        cache = FeatureCache(resolve_cache_dir() / "fusion-parts", part)
        cached = [cache.load(key) for key in keys]
        vectors = [None if array is None else array.reshape(-1) for array in cached]
        missing = [i for i, vector in enumerate(vectors) if vector is None]
        if missing:
            computed = part.transform_many([waves[i] for i in missing])
            for i, array in zip(missing, computed, strict=True):
                vectors[i] = vector = pool_statistics(array)
                stored = vector if part.kind == "pooled" else vector[None, :]
                try:
                    cache.save(keys[i], np.ascontiguousarray(stored, dtype=np.float32))
                except OSError as error:  # a read-only cache must not lose the result
                    log.warning("could not cache fusion part %s: %s", part.id, error)
        return [self._scaled(v) for v in vectors if v is not None]  # none is left missing

    def _scaled(self, vector: np.ndarray) -> np.ndarray:
        if self.scaling == "l2":
            vector = vector / max(float(np.linalg.norm(vector)), 1e-8)
        return np.asarray(vector, dtype=np.float32)

    def compose_files(
        self, misses: Sequence[tuple[str, str]], cache: FeatureCache, extract_part: ExtractPart
    ) -> list[Outcome]:
        """Over files: each part from its own cache (``features/derived.py``), concatenated."""
        paths = [path for path, _ in misses]
        parts = [extract_part(paths, part) for part in self.extractors()]
        combine = lambda arrays: np.concatenate([self._scaled(pool_statistics(a)) for a in arrays])  # noqa: E731
        return derived_outcomes(misses, cache, parts, combine)

    def output_dim(self) -> int | None:
        dims = []
        for extractor in self.extractors():
            dim = extractor.output_dim()
            if dim is None:
                return None
            dims.append(dim if extractor.kind == "pooled" else 2 * dim)
        return sum(dims)
