#!/usr/bin/env bash
# Makes the Go module jsii-pacmak generated (--code-only) consistent and builds it:
# drops the indirect requirements pacmak took from npm's versions (the Go module proxy
# need not serve them), lets `go mod tidy` resolve them from the direct requirements'
# go.mod files, and compiles the package.
#   bash scripts/tidy-go-module.sh dist/go/cdkvmimport
set -euo pipefail
cd "$1"
sed -i '/\/\/ indirect$/d' go.mod
rm -f local.go.mod
go mod tidy
go build ./...
go vet ./...
