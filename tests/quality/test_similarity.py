"""The spectral fingerprint that pre-filters near-duplicate candidates before phase correlation."""

from __future__ import annotations

import io

import numpy as np
import pytest
import pandas as pd
from PIL import Image

from curate.quality import duplicates
from curate.quality.similarity import FINGERPRINT_BITS, detail_fingerprint, fingerprint_pixels, fingerprints
from tests.quality.test_measures import _radiograph


def _distance(a: bytes, b: bytes) -> int:
    return int(np.bitwise_count(np.frombuffer(a, "<u8") ^ np.frombuffer(b, "<u8")).sum())


def _copies(img: np.ndarray) -> dict[str, np.ndarray]:
    """The demo's kinds of near duplicate (16-bit decodes to the same 8-bit pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, "JPEG", quality=80)
    padded = np.pad(img, 4, mode="edge")
    return {
        "jpeg": np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L")),
        "resized_up": np.asarray(Image.fromarray(img).resize((256, 256), Image.Resampling.BILINEAR)),
        "resized_down": np.asarray(Image.fromarray(img).resize((200, 200), Image.Resampling.BILINEAR)),
        "shifted": padded[4 - 3 : 4 - 3 + img.shape[0], 4 + 4 : 4 + 4 + img.shape[1]],
        "brightened": np.clip(np.rint(img * 1.08), 0, 255).astype(np.uint8),
    }


def test_copies_stay_close_and_other_images_do_not():
    img = _radiograph(seed=11, size=224)
    original = detail_fingerprint(img)
    limit = duplicates._MAX_FINGERPRINT_DISTANCE
    for kind, copy in _copies(img).items():  # within 20% of the bits: a margin below the limit (27%)
        assert _distance(original, detail_fingerprint(copy)) <= 0.2 * FINGERPRINT_BITS, kind
    for seed in range(12, 20):  # same anatomy, other texture
        assert _distance(original, detail_fingerprint(_radiograph(seed=seed, size=224))) > limit, seed


def test_batched_fingerprints_equal_one_at_a_time():
    images = [_radiograph(seed=s, size=size) for s, size in ((1, 224), (2, 256), (3, 224), (4, 100), (5, 40))]
    batched = fingerprints([fingerprint_pixels(i) for i in images])
    assert batched == [detail_fingerprint(i) for i in images]
    assert all(len(f) * 8 >= FINGERPRINT_BITS for f in batched)


def test_the_prefilter_is_off_for_a_low_similarity_threshold():
    table = pd.DataFrame({"detail_fingerprint": [bytes(96), b"\xff" * 96]})
    pairs = pd.DataFrame({"i": [0], "j": [1], "distance": [2]})
    assert duplicates._plausible(table, pairs, similarity=0.55).empty
    assert len(duplicates._plausible(table, pairs, similarity=0.3)) == 1


@pytest.mark.parametrize("shape", [(46, 46), (74, 74), (75, 80), (127, 90), (64, 128)])
def test_band_magnitudes_are_the_fft_magnitudes_at_the_band(shape):
    import scipy.fft

    from curate.quality.similarity import _FP_CELLS, _FP_K, _FP_ROWS, _band_magnitudes

    stack = np.random.default_rng(sum(shape)).integers(0, 256, (3, *shape)).astype(np.uint8)
    rows = np.where(_FP_ROWS < 0, _FP_ROWS + shape[0], _FP_ROWS)
    spectrum = np.abs(scipy.fft.rfft2(stack.astype(np.float64), axes=(-2, -1)))[:, rows][:, :, :_FP_K]
    expected = spectrum.reshape(3, -1)[:, _FP_CELLS]
    np.testing.assert_allclose(_band_magnitudes(stack), expected, rtol=1e-5, atol=1e-3 * expected.max())


def test_a_constant_image_has_the_same_fingerprint_alone_and_in_a_batch():
    flat = np.full((80, 80), 128, dtype=np.uint8)
    others = [np.random.default_rng(k).integers(0, 256, (80, 80), dtype=np.uint8) for k in range(5)]
    alone = fingerprints([fingerprint_pixels(flat)])[0]
    batched = fingerprints([fingerprint_pixels(i) for i in [*others, flat]])[-1]
    assert alone == batched
