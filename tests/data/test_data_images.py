"""decode_image and to_model_input on generated files of every supported kind."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from medviz.data.images import DecodedImage, decode_image, rgb_to_gray, to_model_input
from medviz.errors import DataError


def _png_header(width: int, height: int) -> bytes:
    """A valid PNG that claims ``width × height`` but holds almost no data."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def test_png_grayscale_round_trip(encode, gradient):
    pixels = gradient(16, 8)
    decoded = decode_image(encode(Image.fromarray(pixels), "PNG"))
    assert isinstance(decoded, DecodedImage)
    assert decoded.mode == "L"
    assert decoded.size == (16, 8)
    assert decoded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(decoded.pixels, pixels)
    assert decoded.meta["format"] == "PNG"


@pytest.mark.parametrize(("fmt", "mode"), [("BMP", "L"), ("PPM", "L"), ("TIFF", "L"), ("PNG", "1")])
def test_lossless_formats_decode_exactly(encode, gradient, fmt, mode):
    pixels = gradient(10, 6)
    image = Image.fromarray(pixels)
    if mode == "1":
        image = image.convert("1", dither=Image.Dither.NONE)
        pixels = np.where(pixels >= 128, 255, 0).astype(np.uint8)
    decoded = decode_image(encode(image, fmt))
    np.testing.assert_array_equal(decoded.pixels, pixels)
    assert decoded.mode == mode


def test_pgm_p5_from_raw_bytes():
    data = b"P5\n3 2\n255\n" + bytes([0, 128, 255, 10, 20, 30])
    decoded = decode_image(data, name="patch.pgm")
    assert decoded.mode == "L"
    np.testing.assert_array_equal(decoded.pixels, [[0, 128, 255], [10, 20, 30]])


def test_rgb_jpeg_stays_colour(encode):
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # strongly red
    decoded = decode_image(encode(Image.fromarray(rgb), "JPEG", quality=95))
    assert decoded.mode == "RGB"
    assert decoded.pixels.shape == (16, 16, 3)
    assert decoded.pixels[..., 0].mean() > 150 > decoded.pixels[..., 1].mean() + 100


def test_rgb_with_equal_channels_becomes_two_dimensional(encode, gradient):
    gray = gradient(9, 5)
    decoded = decode_image(encode(Image.fromarray(np.dstack([gray] * 3)), "PNG"))
    assert decoded.mode == "RGB"
    np.testing.assert_array_equal(decoded.pixels, gray)


def test_png_named_jpg_decodes_by_content(tmp_path, encode, gradient):
    path = tmp_path / "scan.jpg"
    path.write_bytes(encode(Image.fromarray(gradient(8, 4)), "PNG"))
    decoded = decode_image(path)
    assert decoded.meta["format"] == "PNG"
    np.testing.assert_array_equal(decoded.pixels, gradient(8, 4))


def test_sixteen_bit_png_is_min_max_stretched(encode):
    values = np.array([[1000, 2000], [3000, 1500]], dtype=np.uint16)
    decoded = decode_image(encode(Image.fromarray(values), "PNG"))
    assert decoded.mode.startswith("I")  # "I;16" (Pillow ≥ 10) for 16-bit grayscale PNG
    np.testing.assert_array_equal(decoded.pixels, [[0, 128], [255, 64]])
    assert decoded.meta["intensity_range"] == (1000.0, 3000.0)


def test_rgba_is_composited_on_black(encode):
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, :, :3] = [200, 100, 50]
    rgba[0, :, 3] = [255, 0, 128]
    decoded = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert decoded.mode == "RGBA"
    assert decoded.meta["alpha"] == "composited on black"
    np.testing.assert_array_equal(decoded.pixels[0], [[200, 100, 50], [0, 0, 0], [100, 50, 25]])


def test_palette_image_becomes_rgb(encode):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    image.putdata([1, 2])
    decoded = decode_image(encode(image, "PNG"))
    assert decoded.mode == "P"
    np.testing.assert_array_equal(decoded.pixels[0], [[255, 0, 0], [0, 0, 255]])


def test_cmyk_jpeg_becomes_rgb(encode):
    cyan = Image.new("CMYK", (8, 8), (255, 0, 0, 0))
    decoded = decode_image(encode(cyan, "JPEG", quality=95))
    assert decoded.mode == "CMYK"
    red, green, blue = decoded.pixels.reshape(-1, 3).mean(axis=0)
    assert red < 40 and green > 215 and blue > 215


def test_exif_orientation_rotates_pixels(encode):
    stored = np.zeros((20, 40), dtype=np.uint8)
    stored[:, 20:] = 255  # dark left half, bright right half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    raw = np.asarray(Image.open(io.BytesIO(data)).convert("L"))

    decoded = decode_image(data)
    assert decoded.size == (20, 40)
    assert decoded.meta["exif_orientation"] == 6
    np.testing.assert_array_equal(decoded.pixels, np.rot90(raw, k=-1))
    # The stored left (dark) half is now at the top.
    assert decoded.pixels[:20].mean() < 30 and decoded.pixels[20:].mean() > 225


def test_multipage_tiff_gives_first_page(encode):
    first = Image.fromarray(np.full((4, 4), 10, dtype=np.uint8))
    second = Image.fromarray(np.full((4, 4), 200, dtype=np.uint8))
    decoded = decode_image(encode(first, "TIFF", save_all=True, append_images=[second]))
    assert decoded.meta["frames"] == 2
    assert (decoded.pixels == 10).all()


def test_animated_gif_gives_first_frame(encode):
    frames = [Image.fromarray(np.full((4, 4), v, dtype=np.uint8)) for v in (30, 220)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    decoded = decode_image(data)
    assert decoded.meta["frames"] == 2
    assert (decoded.pixels == 30).all()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("where", ["pixels", "header"])
def test_truncated_file_names_file_and_problem(encode, fmt, where):
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    cut = data[: len(data) // 2] if where == "pixels" else data[:20]
    expected = fmt if where == "pixels" else "header"
    with pytest.raises(DataError, match=rf"cut\.img: .*{expected}.* truncated"):
        decode_image(cut, name="cut.img")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.png.*empty \(0 bytes\)"):
        decode_image(path)


def test_text_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are notes, not pixels")
    with pytest.raises(DataError, match=r"notes\.png.*not a PNG, JPEG"):
        decode_image(path)


def test_git_lfs_pointer_is_explained():
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"
    with pytest.raises(DataError, match="Git LFS pointer"):
        decode_image(pointer, name="Covid (1).png")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.png: cannot read"):
        decode_image(tmp_path / "nowhere.png")


@pytest.mark.parametrize(
    ("side", "why"),
    [(8000, "our 50 MP limit"), (10000, "Pillow warning"), (20000, "Pillow error")],
)
def test_decompression_bomb_becomes_data_error(side, why):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's warning must not escape either
        with pytest.raises(DataError, match=r"bomb\.png: image is too large"):
            decode_image(_png_header(side, side), name="bomb.png")


def test_max_pixels_option(encode, gradient):
    data = encode(Image.fromarray(gradient(100, 100)), "PNG")
    with pytest.raises(DataError, match=r"100x100 = 10,000 pixels"):
        decode_image(data, name="x.png", max_pixels=5000)
    assert decode_image(data, max_pixels=10_000).size == (100, 100)


def test_pixels_are_read_only(encode, gradient):
    decoded = decode_image(encode(Image.fromarray(gradient(4, 4)), "PNG"))
    with pytest.raises(ValueError):
        decoded.pixels[0, 0] = 1


def test_rgb_to_gray_matches_pillow():
    rgb = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(rgb_to_gray(rgb), expected)


def test_to_model_input_shapes_and_channels(gradient):
    rgb = np.random.default_rng(1).integers(0, 256, size=(30, 50, 3), dtype=np.uint8)
    gray = to_model_input(rgb, image_size=16, channels=1)
    assert gray.shape == (16, 16, 1) and gray.dtype == np.uint8
    expected = np.asarray(
        Image.fromarray(rgb).convert("L").resize((16, 16), Image.Resampling.BILINEAR)
    )
    np.testing.assert_array_equal(gray[..., 0], expected)

    colour = to_model_input(gradient(20, 10), image_size=8, channels=3)
    assert colour.shape == (8, 8, 3)
    np.testing.assert_array_equal(colour[..., 0], colour[..., 2])

    same = to_model_input(gradient(8, 8)[..., None], image_size=8, channels=1)
    np.testing.assert_array_equal(same[..., 0], gradient(8, 8))


def test_to_model_input_antialiases_when_shrinking():
    checker = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    small = to_model_input(checker, image_size=8, channels=1)
    # Point sampling would give only 0 and 255; averaging gives mid-gray.
    assert 100 < small.min() <= small.max() < 155


@pytest.mark.parametrize(
    ("pixels", "options", "message"),
    [
        (np.zeros((4, 4), np.uint8), {"image_size": 8, "channels": 2}, "channels must be 1 or 3"),
        (np.zeros((4, 4), np.uint8), {"image_size": 0, "channels": 1}, "image_size must be"),
        (np.zeros((4, 4), np.float32), {"image_size": 8, "channels": 1}, "must be uint8"),
        (np.zeros((4, 4, 4), np.uint8), {"image_size": 8, "channels": 1}, "must have shape"),
    ],
)
def test_to_model_input_rejects_bad_input(pixels, options, message):
    with pytest.raises(DataError, match=message):
        to_model_input(pixels, **options)
