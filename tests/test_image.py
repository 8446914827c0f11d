#!/usr/bin/python3
"""test_image.py: engine/jp_image.c against PIL's decoding and torchvision's preprocessing.

Usage: /usr/bin/python3 tests/test_image.py [PATH/TO/test_image]
(default: $JP_TEST_BIN_DIR/test_image, else $JP_BUILD_DIR/tests/test_image,
else build/tests/test_image: what tests/run_tests.sh provides)

The images: every photo in data/imagenet/ (PNG and JPEG) and synthetic ones
made in a temporary directory: a 100x37 image that gets upscaled, tall and
wide ones whose crop offsets round half to even, greyscale, grey+alpha, RGBA,
palette and 16-bit PNGs; greyscale, 4:4:4, 4:2:2, progressive, odd-sized and
CMYK JPEGs written by PIL, a JPEG named .png, and the JPEGs PIL cannot write
(YCCK, Adobe RGB, CMYK without an Adobe marker) from `test_image write-jpegs`.
For each it runs the seed tool's transform

    Image.open(path).convert('RGB') -> Resize(256) -> CenterCrop(224)
    -> ToTensor() -> Normalize(mean, std)

and `test_image dump IMAGE OUT.f32` (jp_image_load) on the same file, undoes
Normalize on both (x * std + mean, i.e. back to [0, 1] pixel values) and checks:

  image_decode_<name>  `test_image decode` (jp_image_decode) gives the very
                       pixels of Image.open(path).convert('RGB'): PNGs through
                       stb_image, JPEGs through libjpeg-turbo with PIL's
                       settings, the library PIL itself links
  image_<name>         every value within 1/255 of torchvision's (the issue's
                       bound), PNG and JPEG alike
  image_exact_<name>   every value identical, pixel for pixel (jp_image.c ports
                       Pillow's fixed-point resampler); checked on x86-64,
                       where Pillow rounds as jp_image.c does

printing the largest and the mean difference, in [0, 1] units and in levels.

Measured (x86-64, Debian 12: Pillow 9.4.0 on libjpeg-turbo 2.1.5): 0 for every
file, JPEGs included (chelsea.jpg, grey, CMYK, YCCK, ...).  Before JPEGs went
to libjpeg-turbo, stb_image's JPEG decoder (its own IDCT rounding, chroma
upsampling that always adds 8 where libjpeg-turbo alternates 8 and 7) put
chelsea.jpg 2/255 off after the transform, a 4:2:2 file 3/255.  Needs Debian's
python3 (torch, torchvision, PIL, numpy); prints SKIP without them.
"""

import os
import platform
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGENET_DIR = REPO / "data" / "imagenet"
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
# Bound before Normalize, in [0, 1] units: the contract, for PNG and
# JPEG alike (in fact 0 on x86-64, image_exact_ checks that).  A tiny slack
# absorbs the float32 rounding of Normalize and its inverse (about 1e-7).
SLACK = 1e-5
TOLERANCE = 1.0 / 255


def report(status, name, why=""):
    print(f"{status} {name}" + (f": {why}" if why else ""), flush=True)


def write_png16_rgb(path, pixels):
    """Writes (h, w, 3) uint16 pixels as a 16-bit RGB PNG (PIL cannot)."""
    h, w, _ = pixels.shape

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def make_synthetic(tmp, Image, np):
    """Writes the synthetic images; returns [(name, path)]."""
    rng = np.random.default_rng(20240601)
    out = []

    def noisy(h, w, channels):
        # Smooth ramps plus noise: edges for the filter, texture for rounding.
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 3) % 256][:channels]
                        + [(x * y) % 256] * max(0, channels - 3), axis=-1)
        noise = rng.integers(-40, 41, size=(h, w, channels))
        return np.clip(base + noise, 0, 255).astype(np.uint8)

    def save(name, image, **kwargs):
        path = tmp / name
        image.save(path, **kwargs)
        out.append((name, path))

    # Shorter side 37 < 256: upscaled (filter support stays 1 pixel).
    save("small_100x37.png", Image.fromarray(noisy(37, 100, 3), "RGB"))
    # Tall: resized to 256 x 427, crop top (427 - 224) / 2 = 101.5 -> 102.
    save("tall_300x501.png", Image.fromarray(noisy(501, 300, 3), "RGB"))
    # Wide, an ImageNet-like size: 383 x 256, crop left 79.5 -> 80.
    save("wide_640x427.png", Image.fromarray(noisy(427, 640, 3), "RGB"))
    save("grey_320x240.png", Image.fromarray(noisy(240, 320, 1)[:, :, 0], "L"))
    save("grey_alpha_240x320.png", Image.fromarray(noisy(320, 240, 2), "LA"))
    save("rgba_333x280.png", Image.fromarray(noisy(280, 333, 4), "RGBA"))
    save("palette_300x300.png", Image.fromarray(noisy(300, 300, 3), "RGB").quantize(colors=200))
    # PIL opens 16-bit grey as mode "I" and convert('RGB') clips it to 255;
    # 16-bit RGB keeps its high byte.
    grey16 = (noisy(240, 320, 1)[:, :, 0].astype(np.uint16) * 3).astype(np.uint16)
    save("grey16_320x240.png", Image.fromarray(grey16, "I;16"))
    rgb16 = noisy(260, 300, 3).astype(np.uint16) * 257 + rng.integers(0, 257, size=(260, 300, 3)).astype(np.uint16)
    write_png16_rgb(tmp / "rgb16_300x260.png", rgb16)
    out.append(("rgb16_300x260.png", tmp / "rgb16_300x260.png"))
    save("grey_320x240.jpg", Image.fromarray(noisy(240, 320, 1)[:, :, 0], "L"), quality=92)
    # Odd sizes: partial MCUs at the right and bottom edges, 4:2:0.
    save("odd_333x219.jpg", Image.fromarray(noisy(219, 333, 3), "RGB"), quality=85)
    chelsea = IMAGENET_DIR / "chelsea.png"
    if chelsea.exists():
        with Image.open(chelsea) as image:
            rgb = image.convert("RGB")
        save("chelsea_444.jpg", rgb, quality=92, subsampling=0)
        save("chelsea_422.jpg", rgb, quality=92, subsampling=1)
        save("chelsea_progressive.jpg", rgb, quality=92, progressive=True)
        save("chelsea_cmyk.jpg", rgb.convert("CMYK"), quality=92)
        # A JPEG is a JPEG by its bytes (FF D8 FF), whatever its name.
        named = tmp / "chelsea_jpeg_named.png"
        named.write_bytes((IMAGENET_DIR / "chelsea.jpg").read_bytes())
        out.append((named.name, named))
    return out


def read_ppm(path, np):
    """Reads the binary PPM `test_image decode` writes; (h, w, 3) uint8."""
    data = path.read_bytes()
    magic, w, h, maxval, pixels = data.split(maxsplit=4)
    if magic != b"P6" or maxval != b"255":
        raise ValueError(f"{path}: not an 8-bit binary PPM")
    w, h = int(w), int(h)
    if len(pixels) != w * h * 3:
        raise ValueError(f"{path}: {len(pixels)} pixel bytes for {w} x {h}")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(h, w, 3)


def main():
    if len(sys.argv) > 2:
        print(f"usage: {sys.argv[0]} [PATH/TO/test_image]", file=sys.stderr)
        return 2
    if len(sys.argv) == 2:
        dump = Path(sys.argv[1])
    elif os.environ.get("JP_TEST_BIN_DIR"):
        dump = Path(os.environ["JP_TEST_BIN_DIR"]) / "test_image"
    else:
        dump = Path(os.environ.get("JP_BUILD_DIR", REPO / "build")) / "tests" / "test_image"
    try:
        import numpy as np
        import torch
        from PIL import Image
        from torchvision import transforms
    except ImportError as e:
        report("SKIP", "image_vs_torchvision", f"{e} (run with Debian's /usr/bin/python3)")
        return 0
    if not os.access(dump, os.X_OK):
        report("FAIL", "image_vs_torchvision", f"{dump} is not an executable (make tests-build)")
        return 1

    exact_platform = platform.machine() in ("x86_64", "AMD64")
    from PIL import features
    print(f"PIL {Image.__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}", flush=True)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="jp_test_image_py.") as tmp_name:
        tmp = Path(tmp_name)
        cases = []
        for path in sorted(IMAGENET_DIR.iterdir()):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                cases.append((path.name, path, 256, 224))
        if not cases:
            report("FAIL", "image_photos", f"no PNG or JPEG in {IMAGENET_DIR}")
            failures += 1
        cases += [(name, path, 256, 224) for name, path in make_synthetic(tmp, Image, np)]
        run = subprocess.run([str(dump), "write-jpegs", str(tmp)], capture_output=True, text=True)
        if run.returncode != 0:
            report("FAIL", "image_write_jpegs", f"test_image write-jpegs exited {run.returncode}: {run.stderr.strip()}")
            failures += 1
        else:
            cases += [(Path(line).name, Path(line), 256, 224) for line in run.stdout.split()]
        # A crop larger than the resize: torchvision pads with zeros.
        cases.append(("small_100x37.png@resize200", tmp / "small_100x37.png", 200, 224))

        mean = np.array(MEAN, dtype=np.float64).reshape(3, 1, 1)
        std = np.array(STD, dtype=np.float64).reshape(3, 1, 1)
        for name, path, resize, crop in cases:
            with Image.open(path) as image:
                rgb = image.convert("RGB")

            if "@" not in name:
                ppm = tmp / "decoded.ppm"
                run = subprocess.run([str(dump), "decode", str(path), str(ppm)], capture_output=True, text=True)
                if run.returncode != 0:
                    report("FAIL", f"image_decode_{name}", f"decode exited {run.returncode}: {run.stderr.strip()}")
                    failures += 1
                else:
                    got = read_ppm(ppm, np)
                    want = np.asarray(rgb)
                    if got.shape != want.shape:
                        report("FAIL", f"image_decode_{name}", f"{got.shape} pixels, PIL has {want.shape}")
                        failures += 1
                    else:
                        levels = np.abs(got.astype(np.int16) - want.astype(np.int16))
                        n_off = int(np.count_nonzero(levels))
                        summary = (f"{want.shape[1]} x {want.shape[0]}, max |diff| {int(levels.max())}/255, "
                                   f"{n_off} of {levels.size} values differ from PIL's")
                        if n_off:
                            report("FAIL", f"image_decode_{name}", summary)
                            failures += 1
                        else:
                            report("PASS", f"image_decode_{name}", summary)

            transform = transforms.Compose([
                transforms.Resize(resize),
                transforms.CenterCrop(crop),
                transforms.ToTensor(),
                transforms.Normalize(MEAN, STD),
            ])
            want = transform(rgb).numpy()
            out = tmp / "out.f32"
            run = subprocess.run([str(dump), "dump", str(path), str(out), str(resize), str(crop)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                report("FAIL", f"image_{name}", f"dump exited {run.returncode}: {run.stderr.strip()}")
                failures += 1
                continue
            got = np.fromfile(out, dtype=np.float32)
            if got.size != want.size:
                report("FAIL", f"image_{name}", f"dump wrote {got.size} floats, expected {want.size}")
                failures += 1
                continue
            got = got.reshape(want.shape)
            got_px = got.astype(np.float64) * std + mean
            want_px = want.astype(np.float64) * std + mean
            diff = np.abs(got_px - want_px)
            max_diff = float(diff.max())
            mean_diff = float(diff.mean())
            levels = np.abs(np.rint(got_px * 255) - np.rint(want_px * 255))
            n_off = int(np.count_nonzero(levels))
            bitwise = bool(np.array_equal(got, want))
            summary = (f"max |diff| {max_diff:.6f} = {max_diff * 255:.3f}/255, mean {mean_diff * 255:.4f}/255, "
                       f"{n_off} of {levels.size} values off by one level or more (max {int(levels.max())}), "
                       f"floats bit-identical: {'yes' if bitwise else 'no'}")
            where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape))
            if max_diff > TOLERANCE + SLACK:
                report("FAIL", f"image_{name}", summary + f"; over {TOLERANCE * 255:.0f}/255 at (c, y, x) = {where}")
                failures += 1
            else:
                report("PASS", f"image_{name}", summary)
            if not exact_platform:
                report("SKIP", f"image_exact_{name}",
                       f"{platform.machine()}: Pillow may fuse multiply-adds here, exactness is x86-64's")
            elif n_off == 0:
                report("PASS", f"image_exact_{name}")
            else:
                report("FAIL", f"image_exact_{name}", f"{n_off} values differ from torchvision's")
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
