# logbridge — see README.md. The two commands a new machine needs:
#   make demo   a sync on the local default stack (installs and starts it)
#   make test   unit + integration tests (installs and starts the stack)
SHELL := /bin/bash
GO ?= go
STACK := scripts/stack.sh
BIN := bin
TEST_TIMEOUT ?= 25m
PKGS ?= ./...
DURATION ?= 30m

# The product version (semantic, X.Y.Z) is pkg/version/VERSION; every build
# stamps it and the commit into the binaries (pkg/version, --version).
VERSION ?= $(shell cat pkg/version/VERSION)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo -dirty)
VERSION_PKG := github.com/logbridge/logbridge/pkg/version
LDFLAGS := -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT)
CMDS := ./source-connector ./sink-connector ./cmd/logbridge-inspect ./cmd/logbridge-verify
DIST := dist
RELEASE_ARCHS := amd64 arm64
IMAGE ?= logbridge

.PHONY: termview all build release image test unit up down status install demo lint bench bench-peer e2e soak probe clean fuzz

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ $(CMDS)

# Static linux/amd64 and linux/arm64 binaries of the four commands, one
# tarball per platform and SHA256SUMS over them, in dist/. A release is built
# from a clean, committed tree (RELEASE_ALLOW_DIRTY=1 to try it anyway; the
# binaries then say "-dirty"); record the commit in RELEASES (docs/versioning.md).
release:
	@if [ -z "$(RELEASE_ALLOW_DIRTY)" ] && [ -n "$$(git status --porcelain)" ]; then \
		echo "make release: the tree has uncommitted changes; commit them first (or RELEASE_ALLOW_DIRTY=1)" >&2; exit 2; fi
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; for arch in $(RELEASE_ARCHS); do \
		name=logbridge-$(VERSION)-linux-$$arch; \
		mkdir -p $(DIST)/$$name; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(DIST)/$$name/ $(CMDS); \
		cp README.md CHANGELOG.md docs/versioning.md $(DIST)/$$name/; \
		tar -C $(DIST) -czf $(DIST)/$$name.tar.gz $$name; \
	done
	cd $(DIST) && sha256sum *.tar.gz */source-connector */sink-connector */logbridge-inspect */logbridge-verify > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

# The container image, tagged with the version and as latest (what
# deploy/k8s refers to), and labelled with the version and the commit
# (org.opencontainers.image.version / .revision).
image:
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) \
		-t $(IMAGE):$(VERSION) -t $(IMAGE):latest -f deploy/docker/Dockerfile .

install:
	$(STACK) install

up: install
	$(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

# The README's test command: starts the local stack (idempotent) and runs every
# unit and integration test against it. Integration tests fail, not skip, when
# a server is missing (LOGBRIDGE_REQUIRE_STACK=1).
# Tests that restart shared servers (named Test...Disruptive...) run last, one
# at a time.
test: up
	eval "$$($(STACK) env)" && LOGBRIDGE_REQUIRE_STACK=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)
	@# The deployment checks (rules, dashboard against the real /metrics, compose, Helm): a module of their own.
	eval "$$($(STACK) env)" && cd deploy/validate && LOGBRIDGE_REQUIRE_STACK=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	eval "$$($(STACK) env)" && LOGBRIDGE_REQUIRE_STACK=1 LOGBRIDGE_DISRUPTIVE=1 $(GO) test -count=1 -p 1 -timeout $(TEST_TIMEOUT) -run 'Disruptive' $(PKGS)

# Only the live terminal view's check under tmux (tests/termview; part of
# make test too), printing both panes' screens.
termview: up
	eval "$$($(STACK) env)" && LOGBRIDGE_REQUIRE_STACK=1 $(GO) test -count=1 -v -run TestLiveViewInATerminal ./tests/termview/

# Unit tests only (no servers).
unit:
	$(GO) test -short -count=1 $(PKGS)
	cd deploy/validate && $(GO) test -short -count=1 ./...

demo: up build
	scripts/demo.sh

lint:
	@# go.mod and go.sum must be what `go mod tidy` makes of the imports.
	$(GO) mod tidy -diff
	$(GO) vet ./...
	cd deploy/validate && $(GO) mod tidy -diff && $(GO) vet ./...
	@if $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -version >/dev/null 2>&1; then \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...; \
	else echo "staticcheck unavailable from the Go proxy; ran go vet only"; fi

# Codec micro-benchmarks, then the pipeline benchmarks against the stack
# (tests/bench: one run each; LOGBRIDGE_LAG_DURATION=5m for the issue's
# drift check, LOGBRIDGE_BENCH_DOCS / _COLLS / _PARALLELISM for the data set).
bench: up
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m ./schema/...
	eval "$$($(STACK) env)" && LOGBRIDGE_LAG_DURATION=$${LOGBRIDGE_LAG_DURATION:-60s} $(GO) test -run '^$$' -bench . -benchtime 1x -count=1 -timeout 60m -v ./tests/bench/...

# logbridge side by side with the MongoDB Kafka Connector 2.0.1 in Kafka
# Connect 4.1.2 (issue 21's table): both fetched from Maven Central with mvn
# into .cache/mongo-connect-jars on the first run (needs java 17+ and mvn),
# both pipelines run on the stack's servers and the same data, and the
# benchmark prints a table of both with their ratios (tests/bench,
# BenchmarkPeerMongoKafkaConnector). LOGBRIDGE_BENCH_DOCS (per collection,
# default 50000 × 4 collections), LOGBRIDGE_LAG_RATE (500),
# LOGBRIDGE_LAG_WARMUP (15s), LOGBRIDGE_LAG_DURATION (60s) and
# LOGBRIDGE_PEER_ROUNDS (2) shorten or lengthen it.
bench-peer: up
	eval "$$($(STACK) env)" && LOGBRIDGE_BENCH_PEER=1 $(GO) test -run '^$$' -bench '^BenchmarkPeerMongoKafkaConnector$$' -benchtime 1x -count=1 -timeout 90m -v ./tests/bench/

# Fault-injection end-to-end suite (restarts the shared Kafka broker): seeds
# 1,2,3 by default, E2E_SEEDS=4,5 (LOGBRIDGE_E2E_SEEDS) for others. `make test`
# runs it too, in its last (Disruptive) phase.
E2E_SEEDS ?=
e2e: up
	eval "$$($(STACK) env)" && LOGBRIDGE_REQUIRE_STACK=1 LOGBRIDGE_DISRUPTIVE=1 LOGBRIDGE_E2E_SEEDS=$(E2E_SEEDS) \
		$(GO) test -count=1 -p 1 -timeout 15m -v -run '^TestDisruptiveE2E$$' ./tests/e2e/

# The same with one seed (the first of E2E_SEEDS, default 1) for DURATION.
soak: up
	eval "$$($(STACK) env)" && LOGBRIDGE_REQUIRE_STACK=1 LOGBRIDGE_DISRUPTIVE=1 LOGBRIDGE_SOAK=$(DURATION) LOGBRIDGE_E2E_SEEDS=$(E2E_SEEDS) \
		$(GO) test -count=1 -timeout 24h -v -run '^TestSoak$$' ./tests/e2e/

# Fuzz every parser of user input, FUZZTIME each (default 30s), one after
# the other with FUZZ_PARALLEL workers. Seeds and named regression cases
# live in each package's testdata/fuzz/<FuzzName>/; a crash the fuzzer finds
# is written there too and becomes a regression case of `go test`.
FUZZTIME ?= 30s
FUZZ_PARALLEL ?= 1
# Minimizing each new input may take up to a minute by default, which eats
# short runs; crashers are still minimized.
FUZZ_MINIMIZE ?= 10s
FUZZ_TARGETS := \
	./pkg/control:FuzzCompileRegex \
	./pkg/control:FuzzStartParams \
	./source-connector/internal/controlapi:FuzzStartRequest \
	./sink-connector/internal/apply:FuzzParseNSMap \
	./pkg/config:FuzzConfigFile \
	./source-connector/internal/capture:FuzzMap \
	./schema/inspect:FuzzKeyFilter
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZ_MINIMIZE) -parallel $(FUZZ_PARALLEL) $$pkg; \
	done

probe: up
	eval "$$($(STACK) env)" && $(GO) run ./tests/conformance/cmd/probe --uri "$$SOURCE_URI" --name source

clean:
	rm -rf $(BIN) $(DIST)
