# Tandem — build, test, run. Everything a fresh Debian 12 machine with Go 1.26
# needs is installed by the targets themselves (tools into ./bin, apt packages
# when missing and we are root).

SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
STATICCHECK_VERSION := v0.8.2
MODULES := pkg services/monitor services/replicator services/notifier services/license cmd/tandem
export CGO_ENABLED ?= 0
export GOFLAGS := -buildvcs=false

.PHONY: all build run test unit lint tools apt-deps bench images clean fuzz

all: build

## build: static binaries in ./bin
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/tandem ./cmd/tandem

## run: the demo — a whole pair on loopback with embedded NATS, and a failover
run: build
	$(BIN)/tandem demo

## test: lint, then every test of the workspace with the race detector
test: lint unit

unit: apt-deps
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m work

## lint: gofmt, go vet, staticcheck, go mod tidy leaves no diff
lint: tools
	@out=$$(gofmt -l pkg services cmd); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet work
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

## apt-deps: Debian packages the tests use (gcc for -race, sqlite3 for replication tests)
apt-deps:
	@missing=""; \
	command -v gcc >/dev/null || missing="$$missing gcc libc6-dev"; \
	command -v sqlite3 >/dev/null || missing="$$missing sqlite3"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "please install:$$missing"; exit 1; fi; \
	fi

## bench: the figures of SPEC §10 beside their targets
bench: build
	$(GO) run ./cmd/tandem/internal/benchrun -tandem $(BIN)/tandem

## fuzz: run every fuzz target of the wire decoders for FUZZTIME each
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	pkg:./event:FuzzDecode \
	pkg:./api:FuzzDecodeAck pkg:./api:FuzzDecodeConfigReply pkg:./api:FuzzDecodeNotification \
	pkg:./license:FuzzDecode pkg:./session:FuzzRewrite \
	services/monitor:./internal/wire:FuzzDecodeHeartbeat services/monitor:./internal/wire:FuzzDecodeControl \
	services/replicator:./internal/wire:FuzzDecode services/replicator:./internal/wire:FuzzLiteral
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		mod=$${t%%:*}; rest=$${t#*:}; pkg=$${rest%%:*}; fn=$${rest#*:}; \
		echo "fuzz $$mod $$pkg $$fn"; \
		(cd $$mod && $(GO) test -run XXX -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg) || exit 1; \
	done

## images: FROM scratch images of the static binaries
images: build
	docker build -q -t tandem:latest -f deploy/Dockerfile $(BIN)

clean:
	rm -rf $(BIN)
