# Fresh-machine entry points (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck imports check zoo bench clean

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.core
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.core
	mkdir -p out
	$(BIN)/microlith compile examples/lenet_digits.onnx -o out/lenet_digits.tflite -v
	$(BIN)/microlith compile examples/lenet_digits.onnx -o out/lenet_digits_int8.tflite \
		--quantize int8 --calibration-data examples/digits_calibration.npz
	$(BIN)/microlith compile examples/lenet_digits.onnx --target c -o out/lenet_digits_c \
		--quantize int8 --calibration-data examples/digits_calibration.npz
	$(BIN)/microlith inspect out/lenet_digits_int8.tflite

test: $(VENV)/.test
	sh tools/mcu/install_toolchain.sh
	$(BIN)/python -m pytest -q

lint: $(VENV)/.test
	$(BIN)/ruff check compiler passes backends tools tests

typecheck: $(VENV)/.test
	$(BIN)/python tools/typecheck.py

imports: $(VENV)/.test
	$(BIN)/python tools/check_imports.py

# everything .ci/run checks besides the tests
check: lint typecheck imports

bench: $(VENV)/.test
	$(BIN)/python tools/bench.py

zoo: $(VENV)/.test
	$(BIN)/python tools/make_zoo.py --out tests/zoo

clean:
	rm -rf out .pytest_cache
