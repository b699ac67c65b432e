"""Make ``tests/data/tf_converter_digits_int8.tflite``: a real TF-converter int8 model.

A small Keras CNN on the digits data (16x16x1, NHWC) trained for a few epochs, converted
by TensorFlow's own ``TFLiteConverter`` in its full-integer post-training mode (int8
inputs and outputs, representative data from the training split). The file is committed
so the tests need no TensorFlow; this tool regenerates it where TensorFlow is importable
(``pip install tensorflow-cpu``)::

    python tools/make_tf_tflite.py [-o tests/data/tf_converter_digits_int8.tflite]

The test (``tests/test_tflite_import_tf.py``) compiles the file to C with microlith and
checks the outputs are TFLite-Micro's bytes on that same file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "tests" / "data" / "tf_converter_digits_int8.tflite"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    try:
        import tensorflow as tf
    except ImportError:
        print("error: this tool needs TensorFlow (pip install tensorflow-cpu)", file=sys.stderr)
        return 2
    from tools.digits import load_digits_split

    tf.keras.utils.set_random_seed(0)
    x_train, y_train, x_test, y_test = load_digits_split(16, "NHWC")
    model = tf.keras.Sequential([
        tf.keras.Input((16, 16, 1)),
        tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        tf.keras.layers.MaxPooling2D(2),
        tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
        tf.keras.layers.Conv2D(32, 1, activation="relu"),
        tf.keras.layers.GlobalAveragePooling2D(),  # MEAN; Keras' Flatten would write SHAPE
        tf.keras.layers.Dense(10),
    ])
    model.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]

    def representative():
        for sample in x_train[:200]:
            yield [sample[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data = converter.convert()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes; Keras float test accuracy "
          f"{100 * accuracy:.2f}%, TensorFlow {tf.__version__})")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
