# carbonstream — every task in one place. `make help` lists them.
#
# Two commands set up and use a fresh machine (Debian, Python 3.11, a Rust toolchain):
#   make run    create the virtual environment, build the Rust core (release), start the service
#   make test   the same install, then lint, cargo test and pytest

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.deps-installed
BUILT  := $(VENV)/.core-built
RUST_SOURCES := $(shell find core-rs/src -name '*.rs') core-rs/Cargo.toml Cargo.toml Cargo.lock

.PHONY: help install system-packages run test test-rust test-python test-servers lint fmt bench lock clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(DEPS): requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	touch $@

$(BUILT): $(DEPS) $(RUST_SOURCES) pyproject.toml
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --release --quiet
	touch $@

install: $(BUILT) ## virtual environment + pinned dependencies + release build of the Rust core

# Debian packages the tests run for real: chromium (the dashboard test; Playwright cannot
# download a browser here) and mosquitto (the MQTT alert delivery test).
CHROMIUM  := /usr/bin/chromium
MOSQUITTO := /usr/sbin/mosquitto
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

$(CHROMIUM) $(MOSQUITTO):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(APT_INSTALL) chromium mosquitto

system-packages: $(CHROMIUM) $(MOSQUITTO) ## Debian packages the tests need (chromium, mosquitto; apt-get, only when missing)

run: install ## start carbonstream (ingest, flow, API on http://127.0.0.1:8000) with the default config
	$(BIN)/carbonstream run

test: install lint test-rust test-python ## everything CI checks

test-rust: ## Rust tests (no Python interpreter linked: the bindings are behind a feature)
	cargo test --workspace --quiet

# Three workers on two cores, whole files each (module-scoped services stay shared): most
# end-to-end tests wait on real services or simulated clocks. With two workers a fresh clone used
# 1.3 cores on average and pytest took 11 min, which put `make test` over 15 min.
test-python: install system-packages test-servers ## pytest: unit, property and end-to-end tests
	$(BIN)/pytest -q -n 3 --dist loadfile --durations=25

# The scale-out tests start real servers on loopback (tests/servers.py): PostgreSQL from Debian's
# package, a Kafka broker from Maven Central (Java 17 runs it; without Java those tests skip).
test-servers: ## PostgreSQL server binaries and Maven (apt), the Kafka broker's jars (Maven), if missing
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q postgresql)
	@if command -v java >/dev/null; then \
	  command -v mvn >/dev/null || \
	    ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends maven); \
	  $(BIN)/python -c "from tests.servers import kafka_jars; kafka_jars()"; fi

lint: install ## ruff, mypy, clippy, rustfmt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cargo clippy --workspace --all-targets --features python --quiet -- -D warnings
	cargo fmt --all --check

fmt: install ## format Python and Rust
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	cargo fmt --all

.PHONY: bench-kernels bench-capacity
RESULTS := benchmarks/results
CAPACITY_ARGS ?=

# A failing suite still leaves its table and does not stop the other half: a capacity sweep of an
# hour is not thrown away because a kernel suite failed. The exit status reports any failure.
bench: install ## kernel suites + capacity sweep; tables in benchmarks/results/ and README
	$(MAKE) --no-print-directory -k bench-kernels bench-capacity; status=$$?; \
	$(BIN)/python -m benchmarks.readme_section README.md $(RESULTS); exit $$status

bench-kernels: install ## pytest-benchmark suites, each paired with its reference -> results/kernels.md
	$(BIN)/pytest benchmarks --benchmark-enable --benchmark-only -q --benchmark-json=$(RESULTS)/kernels.json; \
	status=$$?; $(BIN)/python -m benchmarks.kernel_table $(RESULTS)/kernels.json > $(RESULTS)/kernels.md; \
	exit $$status

bench-capacity: install ## `carbonstream bench capacity` (about an hour) -> results/capacity.md
	$(BIN)/carbonstream bench capacity $(CAPACITY_ARGS) --out $(RESULTS)/capacity.md

lock: ## re-pin requirements.lock from the current virtual environment
	(echo "# Every Python package of the virtual environment, pinned (runtime + test + build)."; \
	 echo "# Regenerate: make lock"; $(BIN)/pip freeze | grep -v -e '^carbonstream' -e '^-e ' -e '^# Editable') > requirements.lock

clean: ## remove build outputs and the virtual environment (keeps carbonstream-data/)
	rm -rf $(VENV) target .pytest_cache .mypy_cache .ruff_cache
	find . -name '*.so' -path './carbonstream/*' -delete
