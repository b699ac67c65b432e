"""The ``.tflite`` flatbuffer format: schema facts, writer (``serialize_model``) and reader
(``parse_model``) over plain dataclasses (``TflModel``, ``TflTensor``, ``TflOperator``).

Shared by the TFLite backend (which fills a ``TflModel`` from target ops), ``inspect`` and
the tests; nothing here knows microlith's IR.
"""
