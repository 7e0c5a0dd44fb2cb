"""Streaming frames into a video with the ffmpeg that imageio-ffmpeg ships, all or nothing.

The video is written under a temporary name beside the target and renamed when ffmpeg has
finished cleanly, so an interrupted run never leaves a file that looks complete but isn't.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ScumbleError, UsageError

VIDEO_SUFFIXES = (".mp4", ".webm", ".gif")


def finishing_filters(fps: float, frames: int, interpolate: int = 1, deflicker: bool = False) -> list[str]:
    """ffmpeg filters applied as frames stream in: the frames on disk stay as made, so --resume re-streams the same video.
    deflicker evens out brightness over 5 frames; minterpolate makes interpolate-1 motion-compensated in-betweens
    a frame (the duration stays, the frame rate grows). Both are ffmpeg's own; with --interpolate-model the
    in-betweens come from that network instead (VideoWriter's in_betweens), and minterpolate is left out.
    minterpolate stops short of the last input frame, so the last frame is held for the in-betweens it needs,
    and the video is cut at exactly frames x interpolate."""
    filters = ["deflicker=size=5:mode=am"] if deflicker else []
    if interpolate > 1:
        filters += [f"tpad=stop_mode=clone:stop={interpolate}", f"minterpolate=fps={fps * interpolate:g}:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1", f"trim=end_frame={frames * interpolate}"]
    return filters


def _codec_params(suffix: str, crf: int, filters: list[str] = ()) -> tuple[str | None, str, list[str]]:
    # One filter thread: minterpolate and deflicker then give the same bytes every run, as -threads 1 does for x264.
    chain = ["-filter_threads", "1", "-vf", ",".join(filters)] if filters else []
    if suffix == ".mp4":
        # yuv420p and +faststart: what browsers and common players need; -threads 1 keeps x264 bit-exact run to run.
        return "libx264", "yuv420p", [*chain, "-crf", str(crf), "-preset", "medium", "-movflags", "+faststart", "-threads", "1"]
    if suffix == ".webm":
        # +bitexact: WebM's muxer otherwise stamps the time of writing into the header, and a resumed video would differ.
        return "libvpx-vp9", "yuv420p", [*chain, "-crf", str(crf), "-b:v", "0", "-row-mt", "0", "-threads", "1", "-fflags", "+bitexact"]
    head = "".join(f"{f}," for f in filters)
    return "gif", "rgb24", ["-filter_threads", "1", "-filter_complex", f"[0:v]{head}split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=bayer", "-loop", "0"]


class VideoWriter:
    """`with VideoWriter(path, fps) as video: video.add(frame)`; renamed into place only on a clean close."""

    def __init__(self, path: Path, fps: float, crf: int = 18, soundtrack: str | None = None, soundtrack_offset: float = 0.0, filters: list[str] = (), in_betweens=None, factor: int = 1):
        """`in_betweens(a, b, n)`: n frames between two, from an interpolation network; each frame then takes
        `factor` places (itself and factor-1 in-betweens), and the last is held for its in-betweens, as minterpolate's are."""
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in VIDEO_SUFFIXES:
            raise UsageError(f"-o {path}: videos are {', '.join(VIDEO_SUFFIXES)}, or give a folder for PNG frames")
        if not 0 <= crf <= 51:
            raise UsageError(f"--crf {crf}: must be between 0 (lossless) and 51")
        if fps <= 0:
            raise UsageError(f"--fps {fps}: must be positive")
        self.fps, self.crf = fps, crf
        self.soundtrack, self.soundtrack_offset = soundtrack, soundtrack_offset
        self.filters = list(filters)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.suffix}")
        self._gen = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.in_betweens, self.factor, self.last = in_betweens, factor, None

    def _open(self, width: int, height: int) -> None:
        import imageio_ffmpeg

        codec, pix_fmt, params = _codec_params(self.suffix, self.crf, self.filters)
        if pix_fmt == "yuv420p" and (width % 2 or height % 2):
            raise UsageError(f"frames of {width}x{height}: H.264/VP9 in yuv420p need even sizes")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gen = imageio_ffmpeg.write_frames(
            str(self.tmp),
            (width, height),
            fps=self.fps,
            codec=codec,
            pix_fmt_out=pix_fmt,
            macro_block_size=1,  # never silently rescale: sizes are chosen to fit the codec instead
            quality=None,
            output_params=params,
            ffmpeg_log_level="error",
        )
        self._gen.send(None)
        self.size = (width, height)

    def add(self, frame: np.ndarray) -> None:
        if self.in_betweens is not None and self.last is not None:
            for made in self.in_betweens(self.last, frame, self.factor - 1):
                self._send(made)
        self._send(frame)
        self.last = frame if self.in_betweens is not None else None

    def _send(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self._gen is None:
            self._open(w, h)
        elif (w, h) != self.size:
            raise ScumbleError(f"frame {self.frames} is {w}x{h}, but the video is {self.size[0]}x{self.size[1]}")
        try:
            self._gen.send(np.ascontiguousarray(frame, dtype=np.uint8))
        except Exception as exc:  # ffmpeg died (disk full, killed); the generator has already stopped it
            self._gen = None
            self.tmp.unlink(missing_ok=True)
            raise ScumbleError(f"{self.path}: ffmpeg stopped writing ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})") from exc
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place (also after Ctrl-C: what was made so far plays)."""
        if self._gen is None:
            return
        if self.last is not None:
            for _ in range(self.factor - 1):
                self._send(self.last)
            self.last = None
        gen, self._gen = self._gen, None
        try:
            gen.close()
        except Exception as exc:  # noqa: BLE001 - ffmpeg failures surface as RuntimeError or OSError
            self.tmp.unlink(missing_ok=True)
            raise ScumbleError(f"{self.path}: ffmpeg failed ({str(exc).strip().splitlines()[-1] if str(exc).strip() else exc})") from exc
        if not self.tmp.is_file() or self.tmp.stat().st_size == 0:
            self.tmp.unlink(missing_ok=True)
            raise ScumbleError(f"{self.path}: ffmpeg wrote nothing (see its message above)")
        if self.soundtrack:
            from .audio import add_soundtrack

            try:
                add_soundtrack(self.tmp, self.soundtrack, self.soundtrack_offset, self.frames / self.fps)
            except ScumbleError:
                self.tmp.unlink(missing_ok=True)
                raise
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._gen is not None:
            try:
                self._gen.close()
            except Exception:  # noqa: BLE001 - we are already failing; the partial file goes anyway
                pass
            self._gen = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()
        return False


def probe(path: Path) -> dict:
    """Frame count, fps, size and codec of a video, read by ffmpeg itself."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), output_params=["-fps_mode", "passthrough"])  # count stored frames, not resampled ones
    meta = reader.__next__()
    frames = sum(1 for _ in reader)
    return {"frames": frames, "fps": meta["fps"], "size": tuple(meta["size"]), "codec": meta.get("codec", "").strip(",").split(" ")[0], "pix_fmt": meta.get("pix_fmt", "")}
