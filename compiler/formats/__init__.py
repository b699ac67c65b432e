"""File formats microlith reads and writes, independent of the IR (``tflite``)."""
