#!/usr/bin/env bash
# Installs actionlint, the checker of .github/workflows, at the version pinned here, from
# the Go module proxy (go install builds it from source; nothing else is downloaded).
# Does nothing when that version is installed already. Prints where it is.
#   ACTIONLINT_BIN_DIR   where to install (default /usr/local/bin as root, else ~/.local/bin)
set -euo pipefail
version=v1.7.12
if [ -n "${ACTIONLINT_BIN_DIR:-}" ]; then dir=$ACTIONLINT_BIN_DIR
elif [ "$(id -u)" -eq 0 ]; then dir=/usr/local/bin
else dir=$HOME/.local/bin
fi

current() { "$1" --version 2>/dev/null | head -n 1; }
for candidate in "$dir/actionlint" "$(command -v actionlint || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && [ "$(current "$candidate")" = "$version" ]; then
    echo "$candidate"
    exit 0
  fi
done

go=$(command -v go || true)
[ -n "$go" ] || { [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go; }
if [ -z "$go" ]; then
  echo "actionlint $version is needed and Go is not installed to build it: install Go 1.24 or newer, then run this again" >&2
  exit 1
fi
mkdir -p "$dir"
echo "installing actionlint $version into $dir (go install, from the Go module proxy)" >&2
GOBIN=$dir GOFLAGS=-mod=mod "$go" install "github.com/rhysd/actionlint/cmd/actionlint@$version"
[ "$(current "$dir/actionlint")" = "$version" ] || { echo "actionlint $version did not install" >&2; exit 1; }
echo "$dir/actionlint"
