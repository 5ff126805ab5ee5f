#!/bin/sh
# Runs inside a node:<version>-alpine container (musl libc) at the repository root, for
# the musl targets of .github/workflows:
#   build  installs Rust for the container's own target with Alpine's rustup (no cross
#          toolchain) and builds the native addon: packages/native/porter.linux-*-musl.node
#   test   installs what the tests use and runs them on the binary already in
#          packages/native (the build job's), with this container's Node.js
# The container must be privileged for the tests' network namespaces.
set -eu
case "${1:-}" in
build)
  apk add --no-cache bash build-base git rustup
  rustup-init -y --profile minimal --default-toolchain stable
  . "$HOME/.cargo/env"
  npm ci --no-audit --no-fund
  npm run build -w @porter/native
  ;;
test)
  apk add --no-cache bash git openssl mosquitto prometheus iproute2 tmux util-linux
  npm ci --no-audit --no-fund
  npm run build -w @porter/core -w @porter/tls -w @porter/metrics -w @porter/cli
  npx ava 'test/core/**' 'test/tls/**' 'test/metrics/**' 'test/cli/**'
  ;;
*)
  echo "usage: ci-alpine.sh build|test" >&2
  exit 2
  ;;
esac
