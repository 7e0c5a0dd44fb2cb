"""Sound for animations: a soundtrack muxed into the video, and a track's loudness as a keyframe schedule.

Both use the ffmpeg that imageio-ffmpeg ships (no ffprobe there, so a file is probed by reading
`ffmpeg -i`'s report). Muxing copies the video stream untouched and encodes the audio bit-exactly,
so a resumed run's video is byte-identical to an uninterrupted one's.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ScumbleError, UsageError
from .keyframes import compile_formula

SAMPLE_RATE = 22050  # plenty for loudness and onsets; keeps decoding an hour of sound cheap
AUDIO_CODECS = {".mp4": ["-c:a", "aac", "-b:a", "160k"], ".webm": ["-c:a", "libopus", "-b:a", "128k"]}
_BITEXACT = ["-fflags", "+bitexact", "-flags:a", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"]


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds


def probe_audio(path: str | Path, flag: str = "--soundtrack") -> AudioInfo:
    """The track's length; one line if the file is missing or holds no sound."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{flag} {path}: no such file")
    report = subprocess.run([_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, errors="replace").stderr
    if not re.search(r"Stream #\S+.*: Audio:", report):
        raise InputError(f"{flag} {path}: no audio stream in this file")
    match = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", report)
    if match is None:
        raise InputError(f"{flag} {path}: ffmpeg cannot tell how long this file is")
    h, m, s = match.groups()
    return AudioInfo(int(h) * 3600 + int(m) * 60 + float(s))


def check_soundtrack(path: str, offset: float, suffix: str | None) -> AudioInfo:
    """Everything about --soundtrack that can be known before the first frame is made."""
    if suffix is None:
        raise UsageError("--soundtrack: frames in a folder have no sound; write an .mp4 or .webm (-o video.mp4)")
    if suffix not in AUDIO_CODECS:
        raise UsageError(f"--soundtrack: a {suffix} video has no sound; write an .mp4 or .webm")
    info = probe_audio(path)
    if offset >= info.duration:
        raise UsageError(f"--soundtrack-offset {offset:g}: the track is only {info.duration:.2f} s long")
    return info


def mux(video: Path, soundtrack: str, offset: float, seconds: float, out: Path) -> None:
    """Write `video` with `soundtrack` from `offset` s as its sound, cut to `seconds`, to `out` (not atomic: the caller renames)."""
    codec = AUDIO_CODECS[out.suffix.lower()]
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(video), "-ss", f"{offset:.6f}", "-i", str(soundtrack),
           "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", *codec, "-t", f"{seconds:.6f}", *_BITEXACT, "-threads", "1"]
    if out.suffix.lower() == ".mp4":
        cmd += ["-movflags", "+faststart"]
    run = subprocess.run([*cmd, str(out)], capture_output=True, text=True, errors="replace")
    if run.returncode != 0:
        out.unlink(missing_ok=True)
        last = (run.stderr.strip().splitlines() or ["no message"])[-1]
        raise ScumbleError(f"--soundtrack {soundtrack}: ffmpeg could not add the sound ({last})")


def add_soundtrack(video: Path, soundtrack: str, offset: float, seconds: float) -> None:
    """Replace the finished `video` with a copy that has the sound, through a temporary file."""
    tmp = video.with_name(f".{video.stem}.sound{video.suffix}")
    mux(video, soundtrack, offset, seconds, tmp)
    os.replace(tmp, video)


# ---------------------------------------------------------------- a track's loudness as a schedule


def decode(path: str | Path, flag: str = "FILE") -> np.ndarray:
    """The track as mono float samples at SAMPLE_RATE."""
    probe_audio(path, flag)
    run = subprocess.run([_ffmpeg(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"], capture_output=True)
    if run.returncode != 0:
        raise InputError(f"{flag} {path}: ffmpeg cannot decode it ({(run.stderr.decode(errors='replace').strip().splitlines() or ['no message'])[-1]})")
    return np.frombuffer(run.stdout, dtype="<f4").astype(np.float64)


def per_frame(samples: np.ndarray, fps: float, measure: str = "loudness", frames: int | None = None) -> np.ndarray:
    """One value in [0, 1] a video frame: RMS loudness, or onset strength (rises in loudness, which is what a beat is)."""
    window = SAMPLE_RATE / fps
    count = frames if frames is not None else max(1, int(np.ceil(len(samples) / window)))
    edges = np.round(np.arange(count + 1) * window).astype(int)
    rms = np.array([np.sqrt(np.mean(samples[a:b] ** 2)) if b > a and a < len(samples) else 0.0 for a, b in zip(edges[:-1], edges[1:])])
    values = np.maximum(np.diff(rms, prepend=rms[:1]), 0.0) if measure == "onsets" else rms
    peak = values.max()
    return values / peak if peak > 0 else values


def schedule_text(values: np.ndarray, mapping: str, precision: int = 4) -> str:
    """Keyframes `i:(map(x))` for each frame i, x its value; a run of equal values keeps only its ends."""
    expression = compile_formula(mapping, ("x", "t"), "--map")
    mapped = [round(expression.at(x=float(x), t=float(i)), precision) for i, x in enumerate(values)]
    keep = [i for i in range(len(mapped)) if i in (0, len(mapped) - 1) or not (mapped[i - 1] == mapped[i] == mapped[i + 1])]
    return ", ".join(f"{i}:({mapped[i]:g})" for i in keep)
