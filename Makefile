# pixelfade_fast: `make demo` runs the main job on the bundled default, `make test` runs the test suite.
# Both create .venv on first use (Python 3.11, CPU build of torch from pip) and install the package into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
STAMP := $(VENV)/.pixelfade-installed
BUILD_INPUTS := setup.py pyproject.toml $(wildcard build_flags.json csrc/*.h csrc/*/*.h csrc/*.cpp csrc/*/*.cpp csrc/*/*.cu csrc/*/*.cuh csrc/*.cu)

.PHONY: install test test-python cuda-check cmake-test demo bench clean

install: $(STAMP)

$(STAMP): $(BUILD_INPUTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" ninja
	$(PY) -m pip install --quiet --no-build-isolation -e ".[test]"
	touch $@

test: install cuda-check cmake-test test-python

test-python: install
	$(PY) -m pytest $(PYTEST_ARGS)

cuda-check: install
	bash scripts/cuda_compile_check.sh $(PY)

# The libtorch build of the same sources and its ctest smoke test (for C++ users).
cmake-test: install
	cmake -S . -B build/cmake -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')"
	cmake --build build/cmake -j 2
	ctest --test-dir build/cmake --output-on-failure

# OpenMP threads that sleep instead of spinning while they wait: on a busy shared CPU (load 18 on 2 cores) ten
# 2-thread protection steps of 16 images took 5.5 s this way and more than 300 s with spinning threads.
demo: install
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pixelfade_fast.demo

bench: install
	$(PY) bench/bench_ops.py

clean:
	rm -rf build *.egg-info pixelfade_fast/_C*.so
