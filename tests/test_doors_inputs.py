"""Every door an input comes through, walked with hostile files: image modes, bombs, special files,
symlink loops, metadata text, and names that try to write to the terminal. Each bad input is one
line naming it; the rest of the batch goes on."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from scumble.cli.render import printable
from scumble.core.errors import InputError
from scumble.core.images import inputs


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes, extra: bytes = b"") -> bytes:
    """A PNG written by hand, for what Pillow will not write itself (16-bit RGB, bombs, oversized zTXt)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def bomb_png(side: int = 9000) -> bytes:
    """A 1-bit PNG of side x side pixels: about 10 KB on disk, 81 million pixels decoded."""
    return raw_png(side, side, 1, 0, (b"\0" + b"\0" * ((side + 7) // 8)) * side)


def ztxt_bomb_png() -> bytes:
    """A valid 2x2 PNG whose zTXt chunk inflates to more than Pillow's MAX_TEXT_CHUNK."""
    text = zlib.compress(b"a" * (PngImagePlugin.MAX_TEXT_CHUNK + 1024), 9)
    return raw_png(2, 2, 8, 0, b"\0\x10\x10" * 2, extra=chunk(b"zTXt", b"parameters\0\0" + text))


def saved(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def good_png(path, color=(200, 40, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), color).save(path)
    return path


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def assert_clean(result) -> None:
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr


# ---------------------------------------------------------------- 1. image modes


def _palette_with_transparency() -> bytes:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    return saved(img, "PNG", transparency=1)


def _sixteen(value: int, dtype: str = "<u2") -> Image.Image:
    return Image.fromarray(np.full((4, 4), value, dtype))


# (what, the file's bytes, the RGB of pixel (0, 0))
MODES = [
    ("16-bit grey PNG (I;16), half", lambda: saved(_sixteen(32768), "PNG"), (128, 128, 128)),
    ("16-bit grey PNG (I;16), full", lambda: saved(_sixteen(65535), "PNG"), (255, 255, 255)),
    ("16-bit big-endian TIFF (I;16B)", lambda: saved(Image.new("I;16B", (4, 4), 1000), "TIFF"), (4, 4, 4)),
    ("32-bit integer TIFF (I) of 16-bit data", lambda: saved(Image.new("I", (4, 4), 40000), "TIFF"), (156, 156, 156)),
    ("16-bit RGB PNG", lambda: raw_png(2, 1, 16, 2, b"\0" + b"\x80\x00\x40\x00\xff\xff" * 2), (128, 64, 255)),
    ("16-bit RGBA PNG, transparent", lambda: raw_png(2, 1, 16, 6, b"\0" + b"\x00\x00" * 8), (255, 255, 255)),
    ("float TIFF (F) in 0..1", lambda: saved(Image.new("F", (4, 4), 0.25), "TIFF"), (64, 64, 64)),
    ("1-bit PNG", lambda: saved(Image.new("1", (4, 4), 1), "PNG"), (255, 255, 255)),
    ("grey PNG (L)", lambda: saved(Image.new("L", (4, 4), 77), "PNG"), (77, 77, 77)),
    ("grey with alpha (LA), transparent", lambda: saved(Image.new("LA", (4, 4), (0, 0)), "PNG"), (255, 255, 255)),
    ("palette (P) with a transparent index", _palette_with_transparency, (255, 255, 255)),
    ("palette with alpha (PA) TIFF, opaque", lambda: saved(Image.new("PA", (4, 4), (0, 255)), "TIFF"), (0, 0, 0)),
    ("RGBA, transparent", lambda: saved(Image.new("RGBA", (4, 4), (255, 0, 0, 0)), "PNG"), (255, 255, 255)),
    ("RGBA, opaque", lambda: saved(Image.new("RGBA", (4, 4), (255, 0, 0, 255)), "PNG"), (255, 0, 0)),
    ("CMYK TIFF, no ink", lambda: saved(Image.new("CMYK", (4, 4), (0, 0, 0, 0)), "TIFF"), (255, 255, 255)),
    ("YCbCr TIFF, mid grey", lambda: saved(Image.new("YCbCr", (4, 4), (128, 128, 128)), "TIFF"), (128, 128, 128)),
]


@pytest.mark.parametrize("what,make,rgb", MODES, ids=[m[0] for m in MODES])
def test_every_mode_pillow_reads_becomes_the_right_rgb(tmp_path, what, make, rgb):
    path = tmp_path / "in.img"
    path.write_bytes(make())
    decoded = inputs.decode_rgb(inputs.InputItem(str(path), path, path).read_bytes(), str(path))
    assert decoded.dtype == np.uint8 and decoded.shape[2] == 3
    assert np.abs(decoded[0, 0].astype(int) - rgb).max() <= 1, (what, decoded[0, 0])


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode == "I;16"  # the mode Pillow's plain convert('RGB') clips to 255
    decoded = inputs.decode_rgb((tmp_path / "deep.png").read_bytes(), "deep.png")
    assert decoded.min() == decoded.max() == 128


REFUSED_MODES = [
    ("float TIFF outside 0..1", lambda: saved(Image.new("F", (4, 4), 3.0), "TIFF"), "floating-point pixels outside 0..1 (found 3..3)"),
    ("float TIFF with NaN", lambda: saved(Image.new("F", (4, 4), float("nan")), "TIFF"), "NaN or infinity"),
    ("32-bit integers past 16 bits", lambda: saved(Image.new("I", (4, 4), 70000), "TIFF"), "32-bit integer pixels outside 0..65535 (found 70000..70000)"),
    ("32-bit negative integers", lambda: saved(Image.new("I", (4, 4), -5), "TIFF"), "32-bit integer pixels outside 0..65535"),
    ("PostScript, which Pillow hands to Ghostscript", lambda: saved(Image.new("L", (4, 4)), "EPS"), "EPS files are not read"),
]


@pytest.mark.parametrize("what,make,message", REFUSED_MODES, ids=[m[0] for m in REFUSED_MODES])
def test_modes_that_do_not_map_to_8_bits_are_refused_by_name(tmp_path, what, make, message):
    (tmp_path / "odd.tif").write_bytes(make())
    with pytest.raises(InputError) as info:
        inputs.decode_rgb((tmp_path / "odd.tif").read_bytes(), "odd.tif")
    assert str(info.value).startswith("odd.tif: ") and message in str(info.value) and "\n" not in str(info.value)


def test_a_mode_pillow_cannot_convert_is_named():
    # No file format Pillow writes yields La (premultiplied grey and alpha); an in-memory image is the only way in.
    with pytest.raises(InputError, match=r"^x\.tif: pixel mode La cannot be converted to RGB"):
        inputs.to_rgb(Image.new("La", (2, 2)), "x.tif")


def test_a_folder_of_odd_and_hostile_files_goes_on(run_cli, tiny_sd, tmp_path):
    folder = tmp_path / "mixed"
    good = good_png(folder / "good.png")
    Image.fromarray(np.full((32, 32), 32768, np.uint16)).save(folder / "deep.png")
    (folder / "bomb.png").write_bytes(bomb_png())
    (folder / "truncated.png").write_bytes(good.read_bytes()[:60])
    (folder / "hot.tif").write_bytes(saved(Image.new("F", (32, 32), 7.5), "TIFF"))
    (folder / "chatty.png").write_bytes(ztxt_bomb_png())
    (folder / ".hidden.png").write_bytes(b"never read: hidden files are skipped")
    result = run_cli("img2img", folder, "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out/")
    assert result.exit_code == 1
    assert_clean(result)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["deep.png", "good.png"]
    expected = {
        "bomb.png": "9000x9000 is 81,000,000 pixels, over the limit of 67,108,864 (8192x8192)",
        "truncated.png": "unreadable or truncated image",
        "hot.tif": "floating-point pixels outside 0..1",
        "chatty.png": "a PNG text chunk inflates past Pillow's limit of 1 MiB",
    }
    lines = error_lines(result)
    assert len(lines) == len(expected)
    for name, message in expected.items():
        [line] = [line for line in lines if f"/{name}:" in line]
        assert message in line
    assert ".hidden" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("2 written, 4 failed")


# ---------------------------------------------------------------- 2. bombs and byte caps


@pytest.mark.parametrize("side,message", [
    (9000, "9000x9000 is 81,000,000 pixels, over the limit of 67,108,864"),
    (14000, "over the limit of 67,108,864 pixels"),  # past twice Pillow's own limit: Pillow refuses it in open()
])
def test_decompression_bombs_are_one_line(run_cli, tiny_sd, tmp_path, side, message):
    (tmp_path / "bomb.png").write_bytes(bomb_png(side))
    for args in (["img2img", "bomb.png", "-p", "x", "--model", tiny_sd, "--steps", 2], ["info", "bomb.png"]):
        result = run_cli(*args)
        assert result.exit_code == 1, result.stderr
        assert_clean(result)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: bomb.png: ")
        assert message in result.stderr and "decompression bomb" in result.stderr


SPECIAL = [
    # (what, make(tmp_path) -> the argument, the problem after "error: ARGUMENT: ")
    ("a named pipe", lambda tmp: os.mkfifo(tmp / "pipe.png") or "pipe.png", "is a named pipe, not an image file (use - for standard input)"),
    ("a character device", lambda tmp: "/dev/zero", "is a character device, not an image file (use - for standard input)"),
    ("a symlink loop", lambda tmp: os.symlink("loop.png", tmp / "loop.png") or "loop.png", "a symlink loop"),
    ("a broken symlink", lambda tmp: os.symlink("gone.png", tmp / "dangling.png") or "dangling.png", "a broken symlink"),
]


@pytest.mark.parametrize("what,make,message", SPECIAL, ids=[s[0] for s in SPECIAL])
def test_special_files_are_refused_and_the_batch_goes_on(run_cli, tiny_sd, tmp_path, what, make, message):
    good_png(tmp_path / "good.png")
    special = make(tmp_path)
    result = run_cli("img2img", special, "good.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out/")
    assert result.exit_code == 1
    assert_clean(result)
    assert error_lines(result) == [f"error: {special}: {message}"]
    assert (tmp_path / "out" / "good.png").exists()


def test_info_refuses_special_files_without_blocking(run_cli, tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "folder").mkdir()
    for target, message in (("pipe.png", "pipe.png: is a named pipe"), ("/dev/zero", "/dev/zero: is a character device"), ("folder", "folder: is a folder, not an image file")):
        result = run_cli("info", target)
        assert result.exit_code == 1 and error_lines(result) == result.stderr.splitlines() and len(error_lines(result)) == 1
        assert message in result.stderr


def test_endless_standard_input_stops_at_the_cap(tiny_sd, tmp_path):
    command = f"cat /dev/zero | {sys.executable} -m scumble img2img - -p x --model {tiny_sd} --steps 2 -o out.png"
    done = subprocess.run(command, check=False, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: <stdin>: larger than {inputs.MAX_INPUT_BYTES // 2**20} MiB, the most scumble reads for one input"]
    assert not (tmp_path / "out.png").exists()


def test_a_file_over_the_cap_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(inputs.MAX_INPUT_BYTES + 1)  # sparse: no disk, and no memory if it is never read
    with pytest.raises(InputError, match=r"^.*big\.png: larger than 256 MiB"):
        inputs.InputItem(str(big), big, big).read_bytes()


def test_unreadable_file_and_folder_are_one_problem_each(run_cli, tiny_sd, tmp_path):
    good_png(tmp_path / "in" / "a.png")
    locked = good_png(tmp_path / "in" / "b.png")
    good_png(tmp_path / "in" / "shut" / "c.png")
    locked.chmod(0)
    try:
        locked.read_bytes()
        pytest.skip("this user reads files whatever their mode (root with CAP_DAC_OVERRIDE)")
    except PermissionError:
        pass
    (tmp_path / "in" / "shut").chmod(0)
    try:
        result = run_cli("img2img", "in", "-r", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out/")
    finally:
        (tmp_path / "in" / "shut").chmod(0o755)
    assert result.exit_code == 1
    assert sorted(error_lines(result)) == ["error: in/b.png: cannot read it (Permission denied)", "error: in/shut: cannot list this folder (Permission denied)"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]


# ---------------------------------------------------------------- 3. finding the inputs


def _looping_tree(root):
    good_png(root / "a.png")
    good_png(root / "sub" / "b.png", color=(10, 200, 10))
    os.symlink("..", root / "sub" / "up")  # two links back up: glob.glob would walk 2**40 paths
    os.symlink("..", root / "sub" / "up2")
    os.symlink("self.png", root / "self.png")
    os.symlink("a.png", root / "alias.png")  # the same file under a second name: read once


@pytest.mark.parametrize("arg", ["tree", "tree/**/*.png"])
def test_symlink_loops_do_not_hang_and_each_is_one_problem(run_cli, tiny_sd, tmp_path, arg):
    _looping_tree(tmp_path / "tree")
    result = run_cli("img2img", arg, "-r", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out/")
    assert result.exit_code == 1
    assert_clean(result)
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == (["a.png", "sub/b.png"] if arg == "tree" else ["a.png", "b.png"])
    assert sorted(error_lines(result)) == sorted([
        "error: tree/self.png: a symlink loop, skipped",
        "error: tree/sub/up: a symlink loop (links back to a folder above it), not followed",
        "error: tree/sub/up2: a symlink loop (links back to a folder above it), not followed",
    ])


def test_the_same_file_reached_twice_is_made_once(run_cli, tiny_sd, tmp_path):
    good_png(tmp_path / "in" / "a.png")
    os.symlink("a.png", tmp_path / "in" / "link.png")
    result = run_cli("img2img", "in", "in/a.png", "in/link.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out/", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]


def test_standard_input_given_twice_is_one_problem(run_cli, tiny_sd, tmp_path):
    result = run_cli("img2img", "-", "-", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "out/", input=saved(Image.new("RGB", (16, 16)), "PNG"))
    assert result.exit_code == 1 and error_lines(result) == ["error: <stdin>: - given twice; standard input can be read only once"], result.stderr
    assert Image.open(tmp_path / "out" / "stdin.png").size == (16, 16)


# ---------------------------------------------------------------- 4. metadata and `scumble info`


def text_png(path, **texts):
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value)
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    return path


A1111 = "a red fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 4x4"

INFO_CASES = [
    # (what, make(tmp_path) -> file name, exit code, text that must appear, stream)
    ("zTXt inflating past MAX_TEXT_CHUNK", lambda t: (t / "z.png").write_bytes(ztxt_bomb_png()) and "z.png", 1,
     "z.png: a PNG text chunk inflates past Pillow's limit of 1 MiB (PngImagePlugin.MAX_TEXT_CHUNK)", "stderr"),
    ("not an image", lambda t: (t / "n.png").write_text("hello") and "n.png", 1, "n.png: not a readable image", "stderr"),
    ("record not JSON, parameters fine", lambda t: text_png(t / "j.png", parameters=A1111, scumble="{oops").name, 0,
     "warning: j.png: its scumble record is not valid JSON; ignored", "stderr"),
    ("record a list, nothing else", lambda t: text_png(t / "l.png", scumble="[1, 2]").name, 1,
     "l.png: carries no generation metadata (its scumble record is JSON but not an object (a list))", "stderr"),
    ("record nested past the parser", lambda t: text_png(t / "deep.png", parameters=A1111, scumble="[" * 100000).name, 0,
     "its scumble record is not valid JSON", "stderr"),
    ("record without task, model a string", lambda t: text_png(t / "r.png", scumble=json.dumps({"model": "x", "seed": 1})).name, 0,
     "scumble record: unknown task on an unnamed model (None, None), not replayable", "stdout"),
    ("A1111 quoting JSON cannot read", lambda t: text_png(t / "q.png", parameters='p\nSteps: 2, Sampler: "a\\qb", Seed: 3').name, 0,
     "Sampler: \"a\\qb\"", "stdout"),
]


@pytest.mark.parametrize("what,make,code,text,stream", INFO_CASES, ids=[c[0] for c in INFO_CASES])
def test_info_on_hostile_metadata(run_cli, tmp_path, what, make, code, text, stream):
    name = make(tmp_path)
    result = run_cli("info", name)
    assert result.exit_code == code, result.stderr
    assert_clean(result)
    assert text in getattr(result, stream)
    assert len(result.stderr.splitlines()) == (1 if stream == "stderr" else 0)
    if code == 0:
        as_json = run_cli("info", name, "--json")
        assert as_json.exit_code == 0 and json.loads(as_json.stdout)["path"] == name


def test_info_reads_a1111_parameters_from_jpeg_and_webp_exif(run_cli, tmp_path):
    from PIL import ExifTags

    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = b"UNICODE\0" + A1111.encode("utf-16-be")
    for name, fmt in (("a.jpg", "JPEG"), ("a.webp", "WEBP")):
        Image.new("RGB", (4, 4)).save(tmp_path / name, format=fmt, exif=exif)
        result = run_cli("info", name, "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["parameters"]["Seed"] == "1"
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.jpg", comment=b"\xff\xfe not text")
    result = run_cli("info", "plain.jpg")
    assert result.exit_code == 1 and error_lines(result) == ["error: plain.jpg: carries no generation metadata"]


def test_info_replay_hint_names_the_images_own_task_and_quotes_the_path(run_cli, tiny_sd, tmp_path):
    good_png(tmp_path / "in.png")
    name = "my it's.png"
    assert run_cli("img2img", "in.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", name).exit_code == 0
    shown = run_cli("info", name)
    assert shown.exit_code == 0
    assert shown.stdout.strip().splitlines()[-1].endswith("""replay with: scumble img2img --replay 'my it'"'"'s.png'""")
    assert "txt2img" not in shown.stdout.splitlines()[-1]


def test_info_text_from_the_file_cannot_drive_the_terminal(run_cli, tmp_path):
    name = "t\x1b]0;pwned\x07.png"
    record = {"task": "txt2img", "model": {"name": "m\x1b[2J"}, "device": "cpu", "dtype": "float32"}
    text_png(tmp_path / name, parameters="a \x1b[31mred\x1b[0m fox\rSteps: 1, Sampler: x, Seed: 2", scumble=json.dumps(record))
    shown = run_cli("info", name)
    assert shown.exit_code == 0 and "\x1b" not in shown.stdout and "\r" not in shown.stdout and "\x07" not in shown.stdout
    assert "a \\x1b[31mred\\x1b[0m fox\\rSteps" in shown.stdout
    # bash's $'...' quoting: pasting the hint names the real file, control characters and all
    assert shown.stdout.strip().splitlines()[-1].endswith("on m\\x1b[2J (cpu, float32), replay with: scumble txt2img --replay $'t\\x1b]0;pwned\\x07.png'")


# ---------------------------------------------------------------- 5. what reaches the terminal


def test_a_file_name_cannot_forge_an_error_line_or_send_escapes(run_cli, tiny_sd, tmp_path):
    name = "bad\nerror: all good\x1b[2J.png"
    (tmp_path / name).write_text("not an image")
    result = run_cli("img2img", name, "-p", "x", "--model", tiny_sd, "--steps", 2)
    assert result.exit_code == 1
    assert_clean(result)
    assert result.stderr.splitlines() == ["error: bad\\nerror: all good\\x1b[2J.png: not an image"]
    info = run_cli("info", name)
    assert info.stderr.splitlines() == ["error: bad\\nerror: all good\\x1b[2J.png: not a readable image (not a format Pillow knows)"]


def test_reporter_lines_are_escaped(run_cli, tiny_sd, tmp_path):
    good_png(tmp_path / "in.png")
    result = run_cli("img2img", "in.png", "-p", "x", "--model", tiny_sd, "--steps", 2, "-o", "o\x1b[2J.png")
    assert result.exit_code == 0, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("wrote ") and "o\\x1b[2J.png (seed " in line and "\x1b" not in line
    assert (tmp_path / "o\x1b[2J.png").exists()


@pytest.mark.parametrize("text,shown", [
    ("plain [brackets] and ünïcode 赤", "plain [brackets] and ünïcode 赤"),
    ("a\nb\rc\td", "a\\nb\\rc\\td"),
    ("\x1b[31m\x9b2J\x7f\x00", "\\x1b[31m\\x9b2J\\x7f\\x00"),
    ("evil\u202egnp.exe", "evil\\u202egnp.exe"),  # right-to-left override
    ("line\u2028sep", "line\\u2028sep"),
    (b"caf\xe9.png".decode("utf-8", "surrogateescape"), "caf\\xe9.png"),  # the byte a file name really holds
    ("x" * 2010, "x" * 2000 + "… (10 more characters)"),
])
def test_printable(text, shown):
    assert printable(text) == shown
