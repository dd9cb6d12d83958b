# The two commands in README.md are a contract: on a fresh Debian 12 machine,
# `make run` sets everything up and runs a broker, `make test` sets everything
# up and runs every test suite.

JOBS ?= $(shell nproc)
PYTHON ?= /usr/bin/python3
HOLDFAST_RELEASE := build/release/src/cli/holdfast

.PHONY: all deps build build-debug run cluster test unit-test e2e-test sanitize fuzz bench bench-cluster soak soak-cluster soak-cluster-random format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

build-debug: deps
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug -j $(JOBS)

# A single-node broker on 127.0.0.1:9092 with its data in ./data.
run: build
	@mkdir -p data
	$(HOLDFAST_RELEASE) serve --data-dir ./data --listen 127.0.0.1:9092 --set admin.listener=127.0.0.1:9644

# A 3-node cluster on 127.0.0.1 (client ports 9092-9094), data in ./data/node-1..3
# (issue 9; experimental, see docs/cluster.md). Ctrl-C stops it.
cluster: build
	@bash scripts/run-cluster.sh $(HOLDFAST_RELEASE)

# Unit tests (CTest) then end-to-end tests with real clients (pytest).
test: build
	@bash scripts/run-tests.sh build/release

unit-test: build
	@cd build/release && ctest --output-on-failure -j $(JOBS)

e2e-test: build
	@bash scripts/run-e2e.sh build/release

# Unit and end-to-end tests under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	@cmake --preset sanitize >/dev/null
	@cmake --build --preset sanitize -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		bash scripts/run-tests.sh build/sanitize

# The fuzzers (clang + libFuzzer), each bounded in time: the request decoder,
# then what comes before authentication (SASL exchanges, the TLS handshake,
# certificate names; seeded by scripts/security-fuzz-seeds.py).
FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz --target request_decoder_fuzz security_fuzz -j $(JOBS)
	@mkdir -p build/fuzz/corpus build/fuzz/security_corpus build/fuzz/security_seeds
	build/fuzz/src/protocol/request_decoder_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 build/fuzz/corpus
	@$(PYTHON) scripts/security-fuzz-seeds.py build/fuzz/security_seeds
	build/fuzz/src/server/security_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
		-dict=src/server/fuzz/security_fuzz.dict build/fuzz/security_corpus build/fuzz/security_seeds

# The benchmarks in one run (bench/run.sh; docs/benchmarks.md): fio, Holdfast's
# throughput, latency and CPU per message, Redis Streams beside it, restart after
# kill -9, the latency picture, then the replicated run. The Redis peer and the
# picture need packages beyond `deps` (bench/install-deps.sh), installed before
# the build so that CMake finds hiredis and builds bench/redis_bench.
bench: deps
	@bash bench/install-deps.sh
	@$(MAKE) --no-print-directory build
	@PYTHON=$(PYTHON) bash bench/run.sh

# Replicated beside single-node figures: 1 node acks=1, 3 nodes RF3 acks=1,
# 3 nodes RF3 acks=all min.insync=2 (throughput and ack latency, medians).
bench-cluster: build
	@$(PYTHON) bench/replicated.py

# The fault-injection scenarios for longer (HOLDFAST_SOAK_MINUTES per scenario),
# then the 3-node cluster under random faults, one at a time, for ~20 minutes
# (scripts/soak-cluster-random.sh: seed, rounds and time from the environment;
# counts per fault kind in build/soak-cluster-results.txt).
soak: build
	@cd build/release && GTEST_SHUFFLE=1 GTEST_REPEAT=2 ctest --output-on-failure -j $(JOBS)
	@HOLDFAST_BIN=$(CURDIR)/$(HOLDFAST_RELEASE) HOLDFAST_SOAK_MINUTES=$${HOLDFAST_SOAK_MINUTES:-10} \
		HOLDFAST_FAULTS_RESULTS=$(CURDIR)/build/soak-results.txt $(PYTHON) -m pytest -s tests/faults
	@bash scripts/soak-cluster-random.sh $(CURDIR)/$(HOLDFAST_RELEASE)

# Only the random-fault cluster soak.
soak-cluster-random: build
	@bash scripts/soak-cluster-random.sh $(CURDIR)/$(HOLDFAST_RELEASE)

# The cluster fault scenarios (tests/cluster/test_fault_*.py) for longer: the
# leader kill loop for HOLDFAST_CLUSTER_KILL_ROUNDS rounds, the zombie leader and
# the network partition HOLDFAST_CLUSTER_FAULT_REPEAT times each.
soak-cluster: build
	@HOLDFAST_BIN=$(CURDIR)/$(HOLDFAST_RELEASE) \
		HOLDFAST_CLUSTER_KILL_ROUNDS=$${HOLDFAST_CLUSTER_KILL_ROUNDS:-30} \
		HOLDFAST_CLUSTER_FAULT_REPEAT=$${HOLDFAST_CLUSTER_FAULT_REPEAT:-5} \
		$(PYTHON) -m pytest -s -rxX tests/cluster/test_fault_*.py

format:
	@find src bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf build
