"""libespeak-ng through ctypes: `synthesize(text, voice, ...)` speaks one utterance.

libespeak-ng comes from the ``espeakng-loader`` wheel (library and voice data), driven in
synchronous mode; no system ``espeak`` binary is needed.

The library keeps global state, and not only the obvious (voice, parameters, callback): its wave
generator keeps static variables from one utterance to the next (pitch-flutter phase, cycle
counters, gain control) that neither espeak_Terminate nor espeak_ng_SetRandSeed resets, so the
same call gives different samples depending on what the process said before. To make every
utterance a pure function of its arguments, each one is spoken by a private, freshly loaded copy
of the library (copied to a temporary file: dlopen of the same path would return the loaded
instance), which is closed afterwards. That costs about 5 ms, and as the copies share nothing,
threads can speak in parallel (ctypes releases the GIL during the C calls).
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from speechprint.core.errors import SpeechPrintError

__all__ = ["synthesize"]

# espeak_PARAMETER values from speak_lib.h
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1

_CALLBACK_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_SHARED_LOCK = threading.Lock()  # guards the shared instance used when private copies fail
_COPY_COUNTER = itertools.count()
_TMP_DIR: str | None = None


def _loader_paths() -> tuple[str, Path]:
    try:
        import espeakng_loader
    except ImportError as exc:
        raise SpeechPrintError(
            "the demo corpus needs eSpeak NG from the 'espeakng-loader' package "
            "(pip install espeakng-loader)"
        ) from exc
    try:
        return espeakng_loader.get_library_path(), Path(espeakng_loader.get_data_path())
    except RuntimeError as exc:
        raise SpeechPrintError(f"the 'espeakng-loader' package is incomplete: {exc}") from exc


def _declare(lib) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK_TYPE]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = None
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int


def _private_copy(library: str):
    """A freshly loaded copy of libespeak-ng, or None where copies cannot be loaded (noexec)."""
    global _TMP_DIR
    try:
        if _TMP_DIR is None:
            _TMP_DIR = tempfile.mkdtemp(prefix="speechprint-espeak-")
            atexit.register(shutil.rmtree, _TMP_DIR, ignore_errors=True)
        path = os.path.join(_TMP_DIR, f"libespeak-ng-{os.getpid()}-{next(_COPY_COUNTER)}.so")
        shutil.copyfile(library, path)
        try:
            return ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
        finally:
            os.unlink(path)  # the mapping stays valid
    except OSError:
        return None


def _close(lib) -> None:
    try:
        import _ctypes

        _ctypes.dlclose(lib._handle)
    except (ImportError, AttributeError, OSError):  # not fatal: the copy just stays loaded
        pass


def _speak(lib, data_dir: Path, text: str, voice: str, params: dict[int, int], seed: int):
    # `path` is the folder that *contains* espeak-ng-data.
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_dir.parent).encode(), 0)
    if rate <= 0:
        raise RuntimeError(
            "eSpeak NG from the 'espeakng-loader' package failed to initialise "
            f"(espeak_Initialize returned {rate}; data: {data_dir})"
        )
    chunks: list[np.ndarray] = []

    def collect(wav, n_samples, _events) -> int:
        if n_samples > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0 = go on

    callback = _CALLBACK_TYPE(collect)  # referenced until the end: C keeps only the pointer
    lib.espeak_SetSynthCallback(callback)
    err = lib.espeak_SetVoiceByName(voice.encode())
    if err != 0:  # a failed voice change would silently keep the previous voice
        raise RuntimeError(f"eSpeak NG has no voice {voice!r} (error {err})")
    for param, value in params.items():
        lib.espeak_SetParameter(param, int(value), 0)
    lib.espeak_ng_SetRandSeed(seed & 0x7FFFFFFF)  # breath noise etc.
    data = text.encode("utf-8") + b"\0"
    err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if err != 0:
        raise RuntimeError(f"espeak_Synth failed with error {err} (voice {voice!r})")
    del callback
    wave = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return wave, rate


def synthesize(
    text: str,
    voice: str = "en-us",
    *,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    gap: int = 0,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Speak `text` with an eSpeak NG voice (``name`` or ``name+variant``, e.g. ``"de+f2"``).

    Returns (int16 samples, sample rate: 22050). `rate` in words per minute, `pitch` and
    `pitch_range` 0-100, `gap` extra pause between words in units of 10 ms, `seed` eSpeak NG's
    random seed. The same arguments give the same samples; safe to call from several threads.
    Raises RuntimeError when eSpeak NG (the 'espeakng-loader' package) is missing or broken, or
    the voice does not exist.
    """
    library, data_dir = _loader_paths()
    params = {_RATE: rate, _PITCH: pitch, _RANGE: pitch_range, _WORDGAP: gap, _VOLUME: 100}
    lib = _private_copy(library)
    if lib is not None:
        _declare(lib)
        try:
            return _speak(lib, data_dir, text, voice, params, seed)
        finally:
            lib.espeak_Terminate()
            _close(lib)
    # No loadable private copy (e.g. a noexec temporary folder): share the package's instance,
    # one utterance at a time. Output then depends slightly on earlier utterances.
    with _SHARED_LOCK:
        try:
            lib = ctypes.CDLL(library)
        except OSError as exc:
            raise RuntimeError(
                f"could not load libespeak-ng from the 'espeakng-loader' package: {exc}"
            ) from exc
        _declare(lib)
        try:
            return _speak(lib, data_dir, text, voice, params, seed)
        finally:
            lib.espeak_Terminate()
