# vmflow — build, demo and test. Every target can be rerun.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# grpcnotrace drops x/net/trace and urfave_cli_no_docs the man-page
# generator: neither is used, and each costs start-up time (bench/).
TAGS     := grpcnotrace,urfave_cli_no_docs
GOFLAGS  += -trimpath
PLUGINS  := $(notdir $(wildcard plugins/*))

.PHONY: all build demo test fmt proto clean deps bench guest

all: build

## build: vmflow and every plugin binary (vmflow-plugin-<name>) into ./bin
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 go build $(GOFLAGS) -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/vmflow ./cmd/vmflow
	CGO_ENABLED=0 go build $(GOFLAGS) -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/vmflow-plugin-hello ./examples/hello
	@for p in $(PLUGINS); do \
	  if grep -qsx 'package main' plugins/$$p/*.go; then \
	    echo "go build -o $(BIN)/vmflow-plugin-$$p ./plugins/$$p"; \
	    CGO_ENABLED=0 go build $(GOFLAGS) -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/vmflow-plugin-$$p ./plugins/$$p || exit 1; \
	  fi; \
	done

## deps: install what building and testing need (apt packages as root or via sudo)
deps:
	@./scripts/deps.sh

## demo: the main job — build everything and run the demo task
demo: deps build
	@./scripts/demo.sh

## test: every test (installs what it lacks first)
test: deps build
	go vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	go test -count=1 -timeout 45m ./...

## guest: the bootable test guest (kernel + initramfs from Debian packages)
guest:
	testdata/guest/build.sh $(CURDIR)/.cache/guest

## bench: the benchmarks (see bench/README.md)
bench: build
	./bench/run.sh

## proto: regenerate the gRPC code from core/protocol/pb/plugin.proto
proto:
	cd core/protocol/pb && protoc --go_out=. --go_opt=paths=source_relative \
	  --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

fmt:
	gofmt -w $$(git ls-files '*.go')
	go run ./internal/hclfmt $$(git ls-files '*.hcl' | grep -v /testdata/fuzz/)

clean:
	rm -rf $(BIN)
