"""The run and training configuration: what one run trains and logs (strict pydantic models).

Here, below training, so a study or experiment file's ``data:`` and ``train:`` sections are checked
without importing torch (``speechprint.train.config`` gives training the same classes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from speechprint.core.config import StrictModel, parse
from speechprint.core.errors import did_you_mean
from speechprint.data.targets import TARGETS

DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"


class TrainConfig(StrictModel):
    """How one configuration trains: optimiser, schedule, early stopping, augmentation, device."""

    epochs: int = Field(40, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    optimizer: Literal["adamw", "adam"] = "adamw"  # adam + weight decay is the notebook's
    scheduler: Literal["plateau", "cosine", "onecycle", "none"] = "plateau"
    patience: int = Field(8, ge=1)  # early stopping on validation balanced accuracy
    grad_clip: float = Field(1.0, ge=0)
    # none | weighted (class-weighted loss) | sampler (class-balanced sampling)
    imbalance: Literal["none", "weighted", "sampler"] = "weighted"
    max_frames: int = Field(400, ge=4)  # training crop and evaluation segment (sequence models)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    # Augmentation, training only, sequence models only (features are normalised first).
    time_masks: int = Field(2, ge=0)
    time_mask_width: int = Field(20, ge=0)
    freq_masks: int = Field(2, ge=0)
    freq_mask_width: int = Field(4, ge=0)
    noise_std: float = Field(0.0, ge=0)
    speed_perturb: float = Field(0.0, ge=0, lt=1)  # max relative change of the frame rate
    # Pooled models on sequence features: many examples per speaker at the cost of a mean. Each
    # epoch trains on mean + std statistics of ``crops`` random windows of ``crop_frames`` per
    # recording; a recording is scored as the mean probability of its evenly spaced windows.
    # 0: one vector of the whole recording (as before).
    crop_frames: int = Field(0, ge=0)
    crops: int = Field(4, ge=1)
    # auto: CUDA when available, else MPS, else CPU. Saved models always load on CPU first.
    device: str = Field("auto", pattern=DEVICE_PATTERN)

    @field_validator("crop_frames")
    @classmethod
    def _crop_long_enough(cls, crop_frames: int) -> int:
        if 0 < crop_frames < 4:
            raise ValueError("crop_frames must be 0 (whole recordings) or at least 4 frames")
        return crop_frames


class DataSpec(StrictModel):
    """Which recordings and labels: the ``data:`` section of study and experiment files."""

    archive: str  # the corpus folder (for every corpus reader, not only the archive's)
    corpus: str = "saa"  # the corpus reader (speechprint.data.corpora.CORPORA)
    target: str = "region"
    regions: str = "seed"  # region table: a packaged name (seed, geo) or a CSV path
    min_count: int = Field(5, ge=2)
    seed: int = 0
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)
    # Many clips per speaker: at most this many (a seeded sample) per speaker; None keeps all.
    max_clips_per_speaker: int | None = Field(None, ge=1)
    # What "balanced accuracy" (and so a study's objective) counts: clips, or speakers with
    # their clips' probabilities averaged. Both are reported either way.
    unit: Literal["clip", "speaker"] = "clip"
    # Features memory-mapped from one packed file instead of held in memory (large corpora).
    lazy_features: bool = False

    @field_validator("target")
    @classmethod
    def _known_target(cls, target: str) -> str:
        # Here, not when the dataset is built: after an MLflow run or a study would exist.
        if target not in TARGETS:
            hint = did_you_mean(target, list(TARGETS)) or ""
            raise ValueError(f"unknown target {target!r}{hint} (valid: {', '.join(TARGETS)})")
        return target


class TransferSpec(StrictModel):
    """Another corpus a promoted model must keep hearing: the ``transfer:`` section of a study file.

    The archive's folds share one passage and one channel, so a model can rise on them and lose
    every other corpus (label smoothing did: speechocean762's Mandarin speakers called east asian
    fell from 96% to 51%). Before the alias moves, the refit candidate is scored on this corpus's
    speakers: it must reach ``min_score`` (balanced accuracy per speaker, when set), and its paired
    interval against the alias's holder must not reach below ``-max_drop``."""

    corpus: str  # a corpus reader (speechprint.data.corpora.CORPORA)
    archive: str  # its folder
    source: str = "region"  # the corpus column whose labels the model's labels are
    labels: str | None = None  # a label map CSV (from,to); None: the same names
    regions: str = "seed"
    clips_per_speaker: int | None = Field(3, ge=1)  # each speaker's first clips (cached features)
    min_score: float | None = Field(None, ge=0, le=1)
    max_drop: float = Field(0.1, ge=0, le=1)

    @field_validator("corpus")
    @classmethod
    def _known_corpus(cls, corpus: str) -> str:
        from speechprint.data.corpora import CORPORA

        if corpus not in CORPORA:
            hint = did_you_mean(corpus, CORPORA.names()) or ""
            raise ValueError(
                f"unknown corpus {corpus!r}{hint} (valid: {', '.join(CORPORA.names())})"
            )
        return corpus

    def resolved(self) -> TransferSpec:
        """The same section with its paths absolute (a study stores it; promote may run elsewhere)."""

        def absolute(path: str) -> str:
            return str(Path(path).expanduser().resolve())

        labels = None if self.labels is None else absolute(self.labels)
        return self.model_copy(update={"archive": absolute(self.archive), "labels": labels})


class Component(StrictModel):
    """A registered component by name, with its parameters (``name`` alone may be a string)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class RunConfig(DataSpec):
    """One configuration: data, extractor, model and training; what every run logs."""

    extractor: str
    model: str
    extractor_params: dict[str, Any] = Field(default_factory=dict)
    model_params: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate_test: bool = False
    cache_dir: str | None = None
    jobs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<run config>") -> RunConfig:
        return parse(cls, data, source=source)
