# The two commands of the README do all the set-up on a fresh machine:
#   make run    create .venv, install, start one node with an embedded Valkey on :8000
#   make test   create .venv, install test tools (and Debian's chromium if missing), run everything

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run dev test test-unit test-faults test-compose lint bench bench-chat bench-events bench-whiteboard \
	bench-cluster bench-memory bench-replicas bench-lobby bench-waiting-room bench-capacity simulate \
	profile profile-chat fuzz-whiteboard bundle system-deps clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# npm, from Debian's packages when it is missing (as root), like chromium below.
NEED_NPM = @command -v npm >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && echo "installing nodejs and npm" && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } || \
	  { echo "npm not found: install Node 20 with npm" >&2; exit 1; }

# The browser bundle (the whiteboard's Yjs client): npm installs exactly the lockfile, esbuild
# bundles into the git-ignored static/build/. Each step reruns only when its inputs change.
NODE_DEPS := node_modules/.installed
BUNDLE    := static/build/whiteboard.js

$(NODE_DEPS): package.json package-lock.json
	$(NEED_NPM)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(BUNDLE): $(NODE_DEPS) $(wildcard static/whiteboard/*.js)
	npm run --silent build

bundle: $(BUNDLE)

run: $(VENV)/.installed $(BUNDLE)
	$(PY) -m runtime serve --host $(HOST) --port $(PORT)

# The same, restarted whenever a Python file changes (its Valkey and data kept).
dev: $(VENV)/.installed $(BUNDLE)
	$(PY) -m runtime dev --host $(HOST) --port $(PORT)

# What the tests drive besides Python: Debian's chromium (browser tests), nginx (the
# deployment's load balancer, run as a plain process) and libfaketime (the nemesis suite runs
# a node on a skewed clock).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || missing="$$missing nginx-light"; \
	[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || missing="$$missing faketime"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing:$$missing -- run 'sudo apt-get install -y$$missing' (the tests need them)"; \
	  fi; \
	fi

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# pytest exits 5 when it collects nothing: report that as a failure with its reason.
test: $(VENV)/.installed-test $(BUNDLE) system-deps lint
	@$(PY) -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

test-unit: $(VENV)/.installed-test
	$(PY) -m pytest -m unit -q

# The nemesis suite, long: every fault under both workloads, histories checked, then
# docs/reliability.md and its plots (tests/nemesis; the short versions run in `make test`).
test-faults: $(VENV)/.installed-test $(VENV)/.installed-bench system-deps
	$(PY) -m tests.nemesis $(ARGS)

# compose.yaml for real (tests/compose, also part of `make test`): a Docker engine, found or
# started (as root: Debian's docker.io and trixie's Compose v2 plugin are installed first;
# deploy/docker/engine.py), the base images pulled or built as stand-ins and cached
# (deploy/docker/images.py), `docker compose up --build`, one node killed, `down -v`.
# Without an engine it says why in one line and skips.
test-compose: $(VENV)/.installed-test
	$(PY) -m pytest tests/compose -q

# Benchmarks print a table and keep it, with a PNG chart, under bench/results/. They need the
# `bench` extra (matplotlib), and some bench/node's own packages (the stock Yjs client and the
# reference y-websocket server). ARGS go to the script: make bench-chat ARGS="--runs 1"
ARGS ?=
BENCH_NODE := bench/node/node_modules/.installed

$(VENV)/.installed-bench: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed

$(BENCH_NODE): bench/node/package.json bench/node/package-lock.json
	$(NEED_NPM)
	cd bench/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench: $(VENV)/.installed-bench
	@command -v redis-benchmark >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null; } || true
	$(PY) bench/runtime_bench.py $(ARGS)

bench-chat: $(VENV)/.installed-bench
	$(PY) bench/chat_bench.py --baselines $(ARGS)

bench-whiteboard: $(VENV)/.installed-bench $(BENCH_NODE)
	$(PY) bench/whiteboard_bench.py $(ARGS)

# Where one event's time goes, stage by stage (node CPU per request, latency), beside the
# bare framework and the fsync floor.
bench-events: $(VENV)/.installed-bench
	$(PY) bench/event_cost.py $(ARGS)

bench-cluster: $(VENV)/.installed-bench
	$(PY) bench/cluster_bench.py $(ARGS)

# Read replicas: reads of one hot object and a document's view fan-out, with and without.
bench-replicas: $(VENV)/.installed-bench
	$(PY) bench/replica_bench.py $(ARGS)

bench-memory: $(VENV)/.installed-bench $(BENCH_NODE)
	$(PY) bench/socket_memory.py $(ARGS)

# Hundreds of thousands of mutated Yjs updates through the whiteboard's rules (a few minutes).
fuzz-whiteboard: $(VENV)/.installed-test
	$(PY) bench/whiteboard_fuzz.py $(ARGS)

bench-lobby: $(VENV)/.installed-bench
	$(PY) bench/lobby_bench.py $(ARGS)

bench-waiting-room: $(VENV)/.installed-bench
	$(PY) bench/waiting_room_bench.py $(ARGS)

# Capacity (docs/scale.md): every per-operation cost measured on real nodes and Valkey, then
# the model's and the simulation's predictions beside measurements at this machine's sizes
# (about 15 minutes; ARGS="--quick --runs 1" for a look). `make simulate` runs the 100-node
# scenarios and the sizing table on the checked-in costs (tools/capacity/costs.json), or
# on a sitting's: make simulate ARGS="--costs bench/results/capacity_costs.json".
bench-capacity: $(VENV)/.installed-bench $(BENCH_NODE)
	$(PY) -m bench.capacity $(ARGS)

simulate: $(VENV)/.installed-bench
	$(PY) -m tools.capacity $(ARGS)

# Where a node spends its CPU under the chat's paced and multi-room loads (py-spy, as root).
profile-chat: $(VENV)/.installed-bench
	$(PY) bench/profile_chat.py $(ARGS)

# Every workload's profile (bench/profile.py), e.g. ARGS="--workload write c4" or, for the
# node of another checkout under the same load, ARGS="--node-tree ../old --label old".
profile: $(VENV)/.installed-bench
	$(PY) bench/profile.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts node_modules static/build \
	  bench/node/node_modules
