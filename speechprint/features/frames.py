"""The 16 kHz frame grid that Whisper and hama share (a 160-sample hop, 50 encoder frames/s, at
most 30 s per call): below the pretrained extractors and the aligners that read their frames."""

from __future__ import annotations

WHISPER_SR = 16000
HOP = 160
WINDOW_SAMPLES = 30 * WHISPER_SR
SAMPLES_PER_ENCODER_FRAME = 2 * HOP  # 320 samples = 20 ms
