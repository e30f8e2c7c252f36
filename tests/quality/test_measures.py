from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, shift

from curate.quality.measures import measure_file, perceptual_hashes
from tests.conftest import write_png


def _radiograph(seed: int = 0, size: int = 128) -> np.ndarray:
    """A bright textured body on a dark background, like a knee radiograph."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    body = np.exp(-(((x - 0.5) / 0.25) ** 2) - ((y - 0.45) / 0.4) ** 2) * 0.7
    body *= 1 - 0.6 * np.exp(-(((y - 0.5) / 0.03) ** 2))  # a joint space
    texture = gaussian_filter(rng.normal(0, 1, (size, size)), 1.0) * 0.08
    return np.clip((0.08 + body + texture) * 255, 0, 255).astype(np.uint8)


def test_16bit_copy_measures_like_the_8bit_original(tmp_path):
    img = _radiograph()
    a = measure_file(write_png(tmp_path / "a.png", img))
    b = measure_file(write_png(tmp_path / "b.png", img.astype(np.uint16) * 257))
    assert a["bits_stored"] == 8 and b["bits_stored"] == 16
    for key in ("brightness_mean", "brightness_p50", "contrast", "dynamic_range", "sharpness", "entropy"):
        assert a[key] == pytest.approx(b[key], abs=0.01), key
    assert a["pixel_hash"] == b["pixel_hash"] and a["file_sha256"] != b["file_sha256"]


def test_dark_blank_and_blurred_images_move_the_right_measures(tmp_path):
    img = _radiograph()
    normal = measure_file(write_png(tmp_path / "n.png", img))
    dark = measure_file(write_png(tmp_path / "d.png", (img * 0.1).astype(np.uint8)))
    blank = measure_file(write_png(tmp_path / "k.png", np.full_like(img, 90)))
    blurred = measure_file(write_png(tmp_path / "b.png", gaussian_filter(img.astype(float), 3).astype(np.uint8)))
    assert dark["brightness_mean"] < 0.1 < normal["brightness_mean"]
    assert blank["contrast"] < 0.01 and blank["entropy"] < 0.1
    assert blurred["sharpness"] < normal["sharpness"] / 3


def test_sharpness_does_not_depend_on_resolution(tmp_path):
    from PIL import Image

    img = _radiograph(size=512)
    big = measure_file(write_png(tmp_path / "big.png", img))
    small = measure_file(write_png(tmp_path / "small.png", np.asarray(Image.fromarray(img).resize((256, 256), Image.BOX))))
    assert big["sharpness"] == pytest.approx(small["sharpness"], rel=0.05)


def test_unreadable_file_is_a_row_with_its_reason(tmp_path):
    path = tmp_path / "x.png"
    path.write_text("<html>not an image</html>")
    row = measure_file(path)
    assert row["readable"] is False and row["error"] == "not_an_image" and len(row["file_sha256"]) == 64


def test_shifted_copy_is_near_one_of_the_probe_hashes():
    img = _radiograph(seed=3, size=224)
    moved = shift(img.astype(float), (3, -4), order=1, mode="nearest").astype(np.uint8)
    probes = perceptual_hashes(img)
    moved_base = perceptual_hashes(moved)[12]
    distances = np.bitwise_count(probes ^ moved_base)
    assert distances.min() <= 6
    assert distances.min() < distances[12] or distances[12] <= 6


def test_inverted_image_scores_as_inverted(tmp_path):
    img = _radiograph()
    normal = measure_file(write_png(tmp_path / "n.png", img))
    inverted = measure_file(write_png(tmp_path / "i.png", 255 - img))
    assert inverted["inversion_score"] > 0.2 > normal["inversion_score"]


def test_a_chunk_measures_like_its_files_one_by_one(tmp_path):
    from curate.quality.measures import measure_files

    paths = [write_png(tmp_path / f"{k}.png", _radiograph(seed=k, size=size)) for k, size in enumerate((96, 128, 96, 300))]
    paths.append(write_png(tmp_path / "deep.png", _radiograph(seed=9).astype(np.uint16) * 257))
    (tmp_path / "empty.png").write_bytes(b"")
    paths.append(tmp_path / "empty.png")
    chunk = measure_files([(p, None) for p in paths])
    for row, path in zip(chunk, paths):
        single = measure_file(path)
        assert row.keys() == single.keys()
        for key, value in single.items():
            assert row[key] == value or (isinstance(value, float) and np.isnan(value) and np.isnan(row[key])), key


def test_padding_on_any_side_is_measured_as_border(tmp_path):
    img = _radiograph(size=128)
    assert measure_file(write_png(tmp_path / "n.png", img))["border_fraction"] == 0.0
    for side, pad in {"top": ((32, 0), (0, 0)), "right": ((0, 0), (0, 32))}.items():
        padded = np.pad(img, pad, constant_values=0)
        fraction = measure_file(write_png(tmp_path / f"{side}.png", padded))["border_fraction"]
        assert fraction == pytest.approx(32 / 160, abs=0.01), side


@pytest.mark.parametrize("shape", [(96, 80), (3, 3), (2, 5), (5, 1), (1, 1)])
def test_one_pixel_pass_gives_the_histogram_the_laplacian_and_the_edges_numpy_gives(shape):
    from curate.quality.pixel_pass import pixel_pass

    img = _radiograph(size=96)[: shape[0], : shape[1]].copy()
    img[0, 0] = 255  # a bright corner widens the top row's and the left column's spread
    found = pixel_pass(img)
    np.testing.assert_array_equal(found.counts, np.bincount(img.ravel(), minlength=256))
    x = img.astype(np.int64)
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    assert (found.laplacian_sum, found.laplacian_squares, found.interior) == (lap.sum(), (lap * lap).sum(), lap.size)
    edges = [x[0], x[-1], x[:, 0], x[:, -1]]
    assert found.edge_spreads.tolist() == [int(e.max() - e.min()) for e in edges]


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0), (4,)])
def test_the_pixel_pass_refuses_an_empty_or_flat_array(shape):
    from curate.quality.pixel_pass import pixel_pass

    with pytest.raises(ValueError, match="non-empty 2-D"):
        pixel_pass(np.zeros(shape, dtype=np.uint8))


def test_sharpness_is_the_laplacians_spread_over_the_grey_levels_spread(tmp_path):
    img = _radiograph(size=96)
    x = img.astype(float)
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    row = measure_file(write_png(tmp_path / "a.png", img))
    assert row["sharpness"] == pytest.approx(lap.std() / (x.std() + 0.25), rel=1e-9)


def test_inversion_scores_of_a_stack_equal_one_at_a_time():
    from curate.quality.measures import _inversion_scores

    images = np.stack([_radiograph(seed=s, size=75) for s in range(3)] + [255 - _radiograph(seed=4, size=75)])
    scores = _inversion_scores(images)
    assert scores.tolist() == [_inversion_scores(img[None])[0] for img in images]
    assert scores[-1] > 0.2 > scores[:-1].max()
