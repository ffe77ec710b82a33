"""Image featurizer on sklearn's digits written out as PNG files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from assay.features import FeaturizerError, ImageFeaturizer, dumps, loads, make_featurizer
from assay.models import LogisticRegression

N_IMAGES = 400


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    images, y = load_digits(return_X_y=True)
    items = []
    for i in range(N_IMAGES):
        pixels = (images[i].reshape(8, 8) * 255 / 16).round().astype(np.uint8)
        sub = root / f"class{y[i]}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(pixels, mode="L").save(sub / f"{i}.png")
        items.append({"image": f"class{y[i]}/{i}.png"})
    return root, items, images[:N_IMAGES] / 16.0, y[:N_IMAGES]


def test_pixels_round_trip_and_standardize(digit_files):
    root, items, pixels, _ = digit_files
    featurizer = make_featurizer("image", size=(8, 8), root=str(root))
    X = featurizer.fit(items).transform(items)
    assert X.shape == (N_IMAGES, 64) and X.dtype == np.float32
    # Undoing the standardization gives back the digit pixels, up to 8-bit rounding.
    np.testing.assert_allclose(X * featurizer.scale_ + featurizer.mean_, pixels, atol=1 / 255 + 1e-6)
    varying = pixels.std(axis=0) > 0.01
    np.testing.assert_allclose(X[:, varying].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(X[:, varying].std(axis=0), 1.0, atol=1e-3)


def test_features_classify_digits(digit_files):
    root, items, _, y = digit_files
    featurizer = ImageFeaturizer(size=(8, 8), root=str(root)).fit(items[:300])
    model = LogisticRegression().fit(featurizer.transform(items[:300]), y[:300])
    assert model.score(featurizer.transform(items[300:]), y[300:]) > 0.85


def test_resize_rgb_absolute_paths_and_pickle(digit_files):
    root, items, _, _ = digit_files
    absolute = [{"image": str(root / item["image"])} for item in items[:20]]
    featurizer = ImageFeaturizer(size=(28, 28), mode="RGB").fit(absolute)
    X = featurizer.transform(absolute)
    assert X.shape == (20, 28 * 28 * 3) and np.all(np.isfinite(X))
    np.testing.assert_array_equal(loads(dumps(featurizer)).transform(absolute[:3]), X[:3])


def test_unreadable_images(digit_files, tmp_path):
    root, items, _, _ = digit_files
    (tmp_path / "broken.png").write_bytes(b"not a png")
    bad = [{"image": str(tmp_path / "broken.png")}, {"image": "missing/nowhere.png"}]
    featurizer = ImageFeaturizer(size=(8, 8), root=str(root)).fit(items[:50])
    with pytest.warns(RuntimeWarning, match="2 of 3 images could not be read"):
        X = featurizer.transform(items[:1] + bad)
    np.testing.assert_allclose(X[1:], 0.0, atol=1e-6)  # the average image, standardized
    strict = ImageFeaturizer(size=(8, 8), root=str(root), on_error="raise").fit(items[:50])
    with pytest.raises(FeaturizerError, match="item 1: cannot read image .*nowhere.png"):
        strict.transform(items[:1] + bad[1:])
    with pytest.raises(FeaturizerError, match="none of the 2 images could be read"):
        ImageFeaturizer(root=str(root)).fit(bad)
