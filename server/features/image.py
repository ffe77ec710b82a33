"""Image featurizer: the pixels of a small, fixed-size copy of each image, standardized."""
from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from .base import Featurizer, FeaturizerError, field_values

ON_ERROR = ("raise", "warn", "zero")
# Decoding a 20000x20000 image takes 400 MB or more; 50 megapixels covers any camera photo.
MAX_PIXELS = 50_000_000


class ImageTooLarge(ValueError):
    """An image whose header claims more pixels than MAX_PIXELS (a decompression bomb, or just huge)."""


def open_image(source, name=None) -> Image.Image:
    """``Image.open`` that refuses images beyond MAX_PIXELS before any pixel is decoded."""
    name = name if name is not None else source
    try:
        img = Image.open(source)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"{name} has more than {MAX_PIXELS} pixels; shrink it and import it again") from None
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise ImageTooLarge(f"{name} is {img.width}x{img.height} pixels, more than the limit of {MAX_PIXELS}; "
                            "shrink it and import it again")
    return img


class ImageFeaturizer(Featurizer):
    """Load ``data["image"]`` with Pillow, resize, scale to [0, 1], flatten, standardize per pixel.

    Parameters
    ----------
    size : (width, height) of the resized image; 8x8 suits digit-sized images,
        28x28 small photos or scans.
    mode : "L" (grayscale) or "RGB".
    root : directory that paths are resolved against, and that they must stay
        inside (symlinks and .. resolved); default: the working directory, any path.
    standardize : subtract each pixel's mean and divide by its standard
        deviation over the fitted images (constant pixels are only centered).
    on_error : an unreadable image "raise"s, or becomes an all-mean row with a
        warning ("warn") or silently ("zero"), so one broken file does not stop
        a whole project from training.
    image_field : the item data key holding the path.
    """

    def __init__(self, size=(28, 28), mode="L", root=None, standardize=True, on_error="warn", image_field="image"):
        self.size = size
        self.mode = mode
        self.root = root
        self.standardize = standardize
        self.on_error = on_error
        self.image_field = image_field

    def _path(self, value) -> str:
        path = os.fspath(value)
        if self.root is None:
            return path
        # With a root, items name files inside it: an item saying /etc/passwd or ../../secret_key
        # (a hostile import) must not make the featurizer read the server's own files.
        path = os.path.join(self.root, path)
        real_root = os.path.realpath(self.root)
        if os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
            raise ValueError(f"{value!r} is outside the image root {self.root}")
        return path

    def _pixels(self, items) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(N, width*height*channels)`` in [0, 1], which rows loaded, and what failed."""
        if self.mode not in ("L", "RGB"):
            raise FeaturizerError(f"mode must be 'L' (grayscale) or 'RGB', got {self.mode!r}")
        if self.on_error not in ON_ERROR:
            raise FeaturizerError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")
        width, height = (int(s) for s in self.size)
        channels = 3 if self.mode == "RGB" else 1
        values = field_values(items, self.image_field, "the image's file path")
        out = np.zeros((len(values), width * height * channels), dtype=np.float32)
        ok = np.ones(len(values), dtype=bool)
        failures = []
        for i, value in enumerate(values):
            path = None
            try:
                path = self._path(value)
                with open_image(path) as img:
                    img = img.convert(self.mode)
                    if img.size != (width, height):
                        img = img.resize((width, height), Image.Resampling.BILINEAR)
                    out[i] = np.asarray(img, dtype=np.float32).reshape(-1) / 255.0
            except (OSError, UnidentifiedImageError, TypeError, ValueError) as exc:
                if self.on_error == "raise":
                    raise FeaturizerError(f"item {i}: cannot read image {path or value!r}: {exc}") from None
                ok[i] = False
                failures.append(f"{path or value!r} ({type(exc).__name__})")
        return out, ok, failures

    def _warn(self, failures, total):
        if failures and self.on_error == "warn":
            shown = "; ".join(failures[:3]) + (f" and {len(failures) - 3} more" if len(failures) > 3 else "")
            warnings.warn(f"{len(failures)} of {total} images could not be read and were given "
                          f"average features: {shown}", RuntimeWarning, stacklevel=3)

    def fit(self, items):
        pixels, ok, failures = self._pixels(items)
        if not ok.any():
            raise FeaturizerError(f"none of the {len(ok)} images could be read ({failures[0]}); check the "
                                  f"paths and the root directory ({self.root!r})")
        self._warn(failures, len(ok))
        self.pixel_mean_ = pixels[ok].mean(axis=0)
        std = pixels[ok].std(axis=0)
        if self.standardize:
            self.mean_ = self.pixel_mean_
            self.scale_ = np.where(std > 1e-3, std, 1.0).astype(np.float32)
        else:
            self.mean_ = np.zeros_like(self.pixel_mean_)
            self.scale_ = np.ones_like(self.pixel_mean_)
        self.n_features_out_ = pixels.shape[1]
        self.fitted_ = True
        return self

    def transform(self, items) -> np.ndarray:
        self._check_fitted()
        pixels, ok, failures = self._pixels(items)
        self._warn(failures, len(ok))
        pixels[~ok] = self.pixel_mean_
        return (pixels - self.mean_) / self.scale_
