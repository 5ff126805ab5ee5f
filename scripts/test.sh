#!/usr/bin/env bash
# Runs every check and test of the project, in order, and ends with one line
# "N passed, N failed, N skipped" that counts every test that ran (cargo's, ava's) plus one
# per check (system packages, build, the generated files, rustfmt, clippy, tsc, biome, the
# Prometheus rules, actionlint, the API docs). A skipped test is one whose requirement is
# missing here (see docs/testing.md): never counted as passed. Exits non-zero if anything
# failed, the system packages included.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
skipped=0
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

step() { printf '\n== %s\n' "$1"; }
check() { # check NAME COMMAND...: one check that passes or fails as a whole
  local name=$1; shift
  step "$name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $name"; fi
}

# Without them, the tests that need a tool or root fail in CI and are skipped elsewhere;
# either way the run fails here, so that a missing package is never overlooked.
check "system packages (scripts/setup-system.sh)" bash scripts/setup-system.sh
check "npm run build" npm run build --silent
check "generated loader and typings are current" git diff --exit-code -- packages/native/index.js packages/native/index.d.ts
dashboard_current() { # grafana/porter.json is what grafana/dashboard.ts builds
  npm run dashboard --silent -w @porter/metrics && git diff --exit-code -- packages/metrics/grafana/porter.json
}
check "Grafana dashboard is current (@porter/metrics)" dashboard_current
check "rustfmt --check" cargo fmt --all -- --check
check "cargo clippy -D warnings" cargo clippy --workspace --all-targets --quiet -- -D warnings
check "tsc --noEmit" npm run typecheck --silent
check "biome check" npx biome check .
check "promtool check rules (@porter/metrics)" promtool check rules packages/metrics/prometheus/rules.yml
check "promtool test rules (@porter/metrics)" promtool test rules packages/metrics/prometheus/rules.test.yml
actionlint() { # the version scripts/setup-system.sh installed; missing is a failure
  local bin
  bin=$(bash scripts/install-actionlint.sh) && "$bin" -color=false
}
check "actionlint (.github/workflows)" actionlint
check "typedoc: API docs, warnings are errors" npm run docs --silent

step "cargo test"
# --no-fail-fast: every test binary runs and is counted, whatever failed before it.
cargo test --workspace --no-fail-fast 2>&1 | tee "$log_dir/cargo.log"
cargo_status=${PIPESTATUS[0]}
# One "test result:" line per test binary (unit tests, each integration test, doc tests).
read -r cp cf ci < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i
      if ($(i+1) ~ /^failed/) f += $i
      if ($(i+1) ~ /^ignored/) s += $i
    }
  } END { print p + 0, f + 0, s + 0 }' "$log_dir/cargo.log")
passed=$((passed + cp)); failed=$((failed + cf)); skipped=$((skipped + ci))
# A binary that did not build or crashed prints no result line: count it as one failure.
if [ "$cargo_status" -ne 0 ] && [ "$cf" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: cargo test exited $cargo_status"; fi

step "ava"
npx ava --tap 2>&1 | tee "$log_dir/ava.log"
ava_status=${PIPESTATUS[0]}
ap=$(awk '/^# pass/ { print $3 }' "$log_dir/ava.log" | tail -1)
af=$(awk '/^# fail/ { print $3 }' "$log_dir/ava.log" | tail -1)
as=$(awk '/^# skip/ { print $3 }' "$log_dir/ava.log" | tail -1)
at=$(awk '/^# todo/ { print $3 }' "$log_dir/ava.log" | tail -1)
passed=$((passed + ${ap:-0})); failed=$((failed + ${af:-0})); skipped=$((skipped + ${as:-0} + ${at:-0}))
if [ "$ava_status" -ne 0 ] && [ "${af:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "FAILED: ava exited $ava_status"; fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
