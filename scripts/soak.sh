#!/usr/bin/env bash
# npm run soak: the model check at scale (crates/porter-core/examples/model_soak/, a
# release build, 10,000,000 operations on 4 threads), then the soak of porter.connect
# (bench/soak.mjs, 10 minutes at 2,000 connections/s with 5 % faults). A job of its own:
# not part of npm test or .ci/run. Exits non-zero if either finds a violation or a leak.
#
# Flags (after `npm run soak --`):
#   --ops N --threads N --seed N --round-ops N --sync-every N   to the model check
#   --minutes N --rate N --faults F --sample S --aging-ms MS --range A-B
#   --max-fd-slope X --json FILE --no-netns                     to bench/soak.mjs
#   --model-only / --soak-only                                  run one of the two
# e.g. npm run soak -- --ops 1000000 --minutes 1
set -uo pipefail
cd "$(dirname "$0")/.."

model_args=(--ops 10000000 --threads 4)
soak_args=()
run_model=1
run_soak=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ops | --threads | --seed | --round-ops | --sync-every)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      model_args+=("$1" "$2"); shift 2 ;;
    --no-netns) soak_args+=("$1"); shift ;;
    --model-only) run_soak=0; shift ;;
    --soak-only) run_model=0; shift ;;
    --*)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      soak_args+=("$1" "$2"); shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

status=0
if [ "$run_model" = 1 ]; then
  echo "== model check at scale"
  cargo run --quiet --release -p porter-core --example model_soak -- "${model_args[@]}" || status=1
fi
if [ "$run_soak" = 1 ]; then
  echo "== soak"
  npm run build --silent || exit 1
  node --expose-gc bench/soak.mjs "${soak_args[@]}" || status=1
fi
exit "$status"
