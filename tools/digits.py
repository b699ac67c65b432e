"""The scikit-learn handwritten-digits data set, split the same way everywhere.

The zoo builder (``tools/make_zoo.py``), the zoo tests and any accuracy benchmark all
import :func:`load_digits_split` so that "test accuracy" always means the same 450
held-out images.

The data is ``sklearn.datasets.load_digits``: 1797 grey-scale 8x8 images with pixel
values 0..16, ten classes. Pixels are scaled to [0, 1]. For convolutional models the
images are upsampled by pixel replication (``np.kron``) so stride-2 layers have room.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TEST_SIZE = 0.25
SPLIT_SEED = 0
NUM_CLASSES = 10
LAYOUTS = ("NCHW", "NHWC", "flat")


def load_digits_split(
    size: int = 16, layout: str = "NCHW"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` for the fixed 75/25 stratified split.

    Args:
        size: image side length; a positive multiple of 8 (8 = original resolution,
            16 = every pixel replicated into a 2x2 block).
        layout: ``"NCHW"`` -> ``[N, 1, size, size]``, ``"NHWC"`` -> ``[N, size, size, 1]``,
            ``"flat"`` -> ``[N, size * size]`` (row-major, the order sklearn uses).

    Returns:
        ``x_*`` are C-contiguous float32 arrays in [0, 1]; ``y_*`` are int64 labels 0..9.
        The split always has 1347 training and 450 test images.
    """
    if size <= 0 or size % 8 != 0:
        raise ValueError(f"size must be a positive multiple of 8, got {size}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")

    digits = load_digits()
    images = digits.images.astype(np.float32) / np.float32(16.0)  # [N, 8, 8]
    labels = digits.target.astype(np.int64)

    factor = size // 8
    if factor > 1:
        images = np.kron(images, np.ones((1, factor, factor), dtype=np.float32))

    if layout == "NCHW":
        x = images[:, None, :, :]
    elif layout == "NHWC":
        x = images[:, :, :, None]
    else:
        x = images.reshape(images.shape[0], size * size)
    x = np.ascontiguousarray(x, dtype=np.float32)

    x_train, x_test, y_train, y_test = train_test_split(
        x, labels, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=labels
    )
    return (
        np.ascontiguousarray(x_train),
        np.ascontiguousarray(y_train),
        np.ascontiguousarray(x_test),
        np.ascontiguousarray(y_test),
    )
