# Tandem — build, test, run. Everything a fresh Debian 12 machine with Go 1.26
# needs is installed by the targets themselves (tools into ./bin, apt packages
# when missing and we are root).

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
STATICCHECK_VERSION := v0.8.2
MODULES := pkg services/monitor services/replicator services/notifier services/license cmd/tandem internal bench
export CGO_ENABLED ?= 0
export GOFLAGS := -buildvcs=false

.PHONY: all build man run test unit lint tools apt-deps bench bench-peers images clean fuzz up down e2e soak

all: build

# The commit and build date tandem --version prints (and tandem_build_info
# carries): -buildvcs=false and -trimpath leave them out of Go's build info.
BUILDINFO := github.com/tandem-ha/tandem/cmd/tandem/internal/buildinfo
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
ifneq ($(COMMIT),)
COMMIT := $(COMMIT)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
endif
LDFLAGS := -X $(BUILDINFO).commit=$(or $(COMMIT),unknown) -X $(BUILDINFO).date=$(shell date -u +%Y-%m-%dT%H:%M:%SZ)

## build: static binaries in ./bin
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/tandem ./cmd/tandem

## man: the man pages of every command, from the same definitions as the help
man: build
	$(BIN)/tandem man --dir $(BIN)/man

## run: the demo — a whole pair on loopback with embedded NATS, and a failover
run: build
	$(BIN)/tandem demo

## test: lint, then every test of the workspace with the race detector, then
## the Docker Compose end-to-end test when a Docker engine answers
test: lint unit e2e

# The dashboard's browser test saves its screenshots in bin/test-artifacts.
unit: apt-deps
	TEST_ARTIFACTS_DIR=$(BIN)/test-artifacts CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m work

## lint: gofmt, go vet, staticcheck, go mod tidy leaves no diff, and the
## programs that ship (tandem, printq) build for Windows (the session agent's
## Windows driver)
lint: tools
	@out=$$(gofmt -l pkg services cmd internal bench); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet work
	cd cmd/tandem && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build ./...
	cd cmd/tandem && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) vet ./internal/agent/...
	$(BIN)/staticcheck work
	@for m in $(MODULES); do \
		cp $$m/go.mod /tmp/tandem-go.mod.bak; cp $$m/go.sum /tmp/tandem-go.sum.bak 2>/dev/null || true; \
		(cd $$m && $(GO) mod tidy) || exit 1; \
		if ! cmp -s $$m/go.mod /tmp/tandem-go.mod.bak; then echo "go mod tidy changes $$m/go.mod"; exit 1; fi; \
	done

tools: $(BIN)/staticcheck

$(BIN)/staticcheck:
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## apt-deps: Debian packages the tests use (gcc for -race, sqlite3 for replication tests,
## cupsd (cups-daemon) and lpadmin/lpstat/lpoptions (cups-client) for the CUPS session agent's test,
## chromium and chromium-driver for the dashboard's browser test). The browser is
## optional: when it cannot be installed, the browser test says so and skips.
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
apt-deps:
	@missing=""; browser=""; \
	command -v gcc >/dev/null || missing="$$missing gcc libc6-dev"; \
	command -v sqlite3 >/dev/null || missing="$$missing sqlite3"; \
	{ command -v cupsd >/dev/null || [ -x /usr/sbin/cupsd ]; } || missing="$$missing cups-daemon"; \
	{ command -v lpstat >/dev/null && command -v lpoptions >/dev/null && { command -v lpadmin >/dev/null || [ -x /usr/sbin/lpadmin ]; }; } || missing="$$missing cups-client"; \
	command -v chromium >/dev/null || browser="$$browser chromium"; \
	command -v chromedriver >/dev/null || browser="$$browser chromium-driver"; \
	if [ -n "$$missing$$browser" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			$(APT_GET) update -qq || true; \
			if [ -n "$$missing" ]; then $(APT_GET) install -y -qq $$missing || exit 1; fi; \
			if [ -n "$$browser" ]; then $(APT_GET) install -y -qq $$browser || \
				echo "apt-deps: could not install$$browser: the dashboard's browser test will skip"; fi; \
		elif [ -n "$$missing" ]; then echo "please install:$$missing"; exit 1; \
		else echo "apt-deps: not root, cannot install$$browser: the dashboard's browser test will skip"; fi; \
	fi

## bench: the figures of SPEC §10 beside their targets
bench: build
	cd bench && $(GO) run . -tandem $(BIN)/tandem

## bench-peers: keepalived (two network namespaces, 1 s adverts) and Redis
## Sentinel (three sentinels, down-after-milliseconds 1000 and 100) through the
## same kill -9 and SIGSTOP as Tandem, in the same run, with Tandem's figures
## beside theirs as ratios. Installs keepalived, redis-server and
## redis-sentinel from Debian when missing (root); PEER_RUNS runs per row.
PEER_RUNS ?= 10
bench-peers: build
	@missing=""; \
	{ command -v keepalived >/dev/null || [ -x /usr/sbin/keepalived ]; } || missing="$$missing keepalived"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			$(APT_GET) update -qq || true; $(APT_GET) install -y -qq $$missing || exit 1; \
		else echo "bench-peers: please install$$missing (or run as root)"; exit 1; fi; \
	fi
	cd bench && $(GO) run . -tandem $(BIN)/tandem -only peers -runs $(PEER_RUNS)

## soak: the long runs. The failover explorer deeper than in `make test`
## (printing the states it explored), then the replication fault suite's
## random faults for SOAK (a Go duration) on two tandem node processes in
## network namespaces (root); SOAK_SEED repeats a run's schedule, SOAK_FAULTS (a
## regular expression) keeps the faults whose names match. The summary
## is the fault suite's last log line.
SOAK ?= 30m
SOAK_TIMEOUT ?= 90m
SOAK_FAULTS ?=
soak:
	cd services/monitor && TANDEM_SOAK=1 CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 120m -v -run '^TestExplore' ./internal/failover/ | grep -v '^=== RUN'
	TANDEM_SOAK=$(SOAK) TANDEM_SOAK_SEED=$(SOAK_SEED) TANDEM_SOAK_FAULTS="$(SOAK_FAULTS)" CGO_ENABLED=1 $(GO) test -race -count=1 -v -timeout $(SOAK_TIMEOUT) \
		-run 'TestReplicationFaultSoak$$' ./cmd/tandem/

## fuzz: run every fuzz target of the wire decoders for FUZZTIME each
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	pkg:./event:FuzzDecode pkg:./event:FuzzDecodeData \
	pkg:./api:FuzzDecodeAck pkg:./api:FuzzDecodeConfigReply pkg:./api:FuzzDecodeNotification \
	pkg:./license:FuzzDecode pkg:./session:FuzzRewrite pkg:./natsnode:FuzzDecodeLinkState \
	pkg:./heartbeat:FuzzDecodeHeartbeat services/monitor:./internal/wire:FuzzDecodeControl \
	services/monitor:./internal/wire:FuzzDecodeHealth \
	services/replicator:./internal/wire:FuzzDecode services/replicator:./internal/wire:FuzzLiteral \
	services/replicator:./internal/wire:FuzzColumnsInPlace \
	services/license:./internal/contact:FuzzDecodeChallenge
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		mod=$${t%%:*}; rest=$${t#*:}; pkg=$${rest%%:*}; fn=$${rest#*:}; \
		echo "fuzz $$mod $$pkg $$fn"; \
		(cd $$mod && $(GO) test -run XXX -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg) || exit 1; \
	done

## images: the FROM scratch image tandem:latest (tandem, each service's own
## tandem-<service> and printq, static)
IMAGE_CTX := $(BIN)/image
# IMAGE is the image's tag; the Compose file runs $TANDEM_IMAGE (the same
# default), so that two checkouts can test their own image side by side.
# It is given to the Compose commands only: exported to every recipe, it
# would reach the tests' processes and their hooks' environment.
IMAGE ?= tandem:latest
SERVICES := monitor replicator notifier license
images: build
	@mkdir -p $(IMAGE_CTX)/data $(IMAGE_CTX)/app
	CGO_ENABLED=0 $(GO) build -trimpath -o $(IMAGE_CTX)/printq ./cmd/tandem/printq
	@for s in $(SERVICES); do \
		echo "build tandem-$$s"; \
		(cd services/$$s && CGO_ENABLED=0 $(GO) build -trimpath -o $(IMAGE_CTX)/tandem-$$s ./cmd/tandem-$$s) || exit 1; \
	done
	cp $(BIN)/tandem $(IMAGE_CTX)/tandem
	docker build -q -t $(IMAGE) -f deploy/Dockerfile $(IMAGE_CTX)

# Docker Compose: `docker compose` (v2) where it exists, else docker-compose (v1).
COMPOSE_FILE := deploy/docker-compose.yml
COMPOSE := $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi)

## up: the pair as containers (deploy/docker-compose.yml); see README § Docker Compose
up: images
	TANDEM_IMAGE=$(IMAGE) $(COMPOSE) -f $(COMPOSE_FILE) up -d
	@echo; echo "the pair is starting; watch it with:"
	@echo "  $(COMPOSE) -f $(COMPOSE_FILE) exec nats-a /tandem status --pair print"

## down: remove the pair's containers, networks and volumes
down:
	TANDEM_IMAGE=$(IMAGE) $(COMPOSE) -f $(COMPOSE_FILE) down -v --remove-orphans

## e2e: the Compose pair killed, restarted, cut and healed (skipped without Docker)
E2E_PROJECT ?= tandem-e2e-$(shell echo $$PPID)
e2e: apt-deps
	@if ! docker info >/dev/null 2>&1; then echo "e2e: skipped: no Docker engine answers (docker info failed)"; exit 0; fi; \
	if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then \
		echo "e2e: skipped: neither docker compose nor docker-compose is installed"; exit 0; fi; \
	$(MAKE) --no-print-directory images || exit 1; \
	TANDEM_IMAGE=$(IMAGE) TANDEM_E2E_COMPOSE="$(COMPOSE)" TANDEM_E2E_FILE=$(CURDIR)/$(COMPOSE_FILE) TANDEM_E2E_PROJECT=$(E2E_PROJECT) \
		CGO_ENABLED=1 $(GO) test -race -count=1 -v -timeout 15m -run TestCompose ./cmd/tandem/internal/e2e/; rc=$$?; \
	TANDEM_IMAGE=$(IMAGE) $(COMPOSE) -p $(E2E_PROJECT) -f $(COMPOSE_FILE) down -v --remove-orphans >/dev/null 2>&1; \
	exit $$rc

clean:
	rm -rf $(BIN)
