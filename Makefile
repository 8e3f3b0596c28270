# Turbine's entry points. `make run` and `make test` work on a fresh Debian 12 machine.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
HOST ?= 0.0.0.0
PORT ?= 8000
CMAKE_FLAGS ?=
export TURBINE_SHARED ?= $(abspath ../shared)

.PHONY: all deps npm-deps build binaries run test unit-test timing-test asan-test e2e-test fuzz-test cuda-test deploy-test format format-check clean

# Node packages the tests use as references (the official openai client, Hugging Face's
# tokenizers and jinja ports), pinned by their lockfiles; reinstalled when a lockfile changes.
NPM_DIRS = tests/e2e tests/tools tests/tools/chat tests/deploy

all: build

deps:
	@scripts/install-deps

npm-deps: deps
	@for d in $(NPM_DIRS); do \
	  if [ ! -f $$d/node_modules/.package-lock.json ] || [ $$d/package-lock.json -nt $$d/node_modules/.package-lock.json ]; then \
	    (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	  fi; \
	done

# Optimised, without debug info (a third less compile time); for a debugger pass
# CMAKE_FLAGS=-DCMAKE_BUILD_TYPE=RelWithDebInfo. The CUDA stage uses the same flags, so ccache
# serves it every host object this build already compiled.
RELEASE_FLAGS = -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG"

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(RELEASE_FLAGS) $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# What the end-to-end, deploy and timing suites run: the server and two test tools.
binaries: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target turbine structured_walk bench_test

run: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target turbine
	$(BUILD)/turbine run --host $(HOST) --port $(PORT) $(ARGS)

# Everything CI runs: format check, the end-to-end tests through real clients against the
# optimised server, the deploy checks, the timing suite on the optimised build, every unit and
# integration test once under ASan/UBSan (clang), a fuzz smoke run, the CUDA build. (Running the
# unit tests twice, optimised and sanitized, cost a whole second build; `make unit-test` still
# runs them optimised.)
test: deps format-check binaries e2e-test deploy-test timing-test asan-test fuzz-test cuda-test
	@echo "make test: all suites passed"

unit-test: build npm-deps
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

timing-test: binaries
	ctest --test-dir $(BUILD) --output-on-failure -L optimised

e2e-test: binaries npm-deps
	tests/e2e/run.sh $(BUILD)/turbine

# Helm chart (helm lint/template, offline schema validation, golden renders), compose file and
# Grafana dashboard: docs/DEPLOY.md. UPDATE_GOLDEN=1 rewrites tests/deploy/golden/.
deploy-test: binaries npm-deps
	cd tests/deploy && TURBINE_BIN=$(abspath $(BUILD))/turbine node --test *.test.mjs

# -O0 with line tables only (half the compile time of -O1 -g; compute-bound modules keep -O1:
# CMakeLists.txt), and stack traces keep file:line.
$(ASAN_BUILD)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DTURBINE_SANITIZE=ON -DTURBINE_FUZZ=ON -DCMAKE_CXX_FLAGS_DEBUG=-gline-tables-only \
	  -DCMAKE_C_FLAGS_DEBUG=-gline-tables-only

asan-test: deps npm-deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target unit_tests fuzz_targets
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:handle_sigbus=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -L unit

fuzz-test: asan-test
	tests/fuzz/run.sh $(ASAN_BUILD)

# The CUDA backend must always compile (nvcc is in CI); its tests skip without a GPU.
CUDA_BUILD ?= build-cuda
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)

cuda-test: deps
	@if [ -z "$(NVCC)" ]; then echo "cuda-test: no nvcc found; skipping the CUDA build"; exit 0; fi; \
	cmake -S . -B $(CUDA_BUILD) -G Ninja $(RELEASE_FLAGS) -DTURBINE_NET=OFF \
	  -DTURBINE_CUDA=ON -DCMAKE_CUDA_COMPILER=$(NVCC) -DCMAKE_CUDA_ARCHITECTURES="80;90a" && \
	cmake --build $(CUDA_BUILD) -j $(JOBS) --target cuda_test && \
	ctest --test-dir $(CUDA_BUILD) --output-on-failure -R '^Cuda'

FORMAT_FILES = $(shell git ls-files 'src/*.h' 'src/*.cpp' 'src/*.cu' 'tests/*.h' 'tests/*.cpp' 'bench/*.cpp' 2>/dev/null)

format:
	clang-format -i $(FORMAT_FILES)

format-check: deps
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
