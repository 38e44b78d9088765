#!/usr/bin/env bash
# Builds and runs the fuzz targets of fuzz/ (the README's "Fuzzing" says what each covers).
# The Makefile calls it (`make fuzz-smoke`, `make fuzz`); run from the repository root.
#
#   fuzz/fuzz.sh build                     build every target
#   fuzz/fuzz.sh smoke SECONDS [TARGET…]   run each target for SECONDS from its seeds, keeping
#                                          nothing it finds but crashes
#   fuzz/fuzz.sh run SECONDS [TARGET…]     the same, growing fuzz/corpus/TARGET across runs
#
# Both runs print one line per target (executions, crashes), copy the inputs that crashed to
# fuzz/artifacts/TARGET/ and fail if any target crashed.
#
# Environment: CARGO_FUZZ, the cargo-fuzz binary (`make` installs it into tools/);
# FUZZ_TARGET_DIR, the fuzz build's directory (outside the clone, its own: the fuzz build
# compiles everything with coverage instrumentation); MAIN_TARGET_DIR, the workspace's target
# directory, whose compiled RocksDB the fuzz build links instead of compiling it again.
set -euo pipefail

: "${CARGO_FUZZ:?set CARGO_FUZZ to the cargo-fuzz binary}"
: "${FUZZ_TARGET_DIR:?set FUZZ_TARGET_DIR to the fuzz build directory}"
: "${MAIN_TARGET_DIR:?set MAIN_TARGET_DIR to the workspace target directory}"

TRIPLE=x86_64-unknown-linux-gnu
BIN_DIR="$FUZZ_TARGET_DIR/$TRIPLE/release"

all_targets() {
  sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^rln-node-fuzz$'
}

# The out/ directory of a finished librocksdb-sys build in the workspace's target directory, of
# the version fuzz/Cargo.lock names (the newest such build if there are several).
rocksdb_lib_dir() {
  local version out best="" newest=0 stamp
  version=$(awk '$0 == "name = \"librocksdb-sys\"" { getline; gsub(/"/, "", $3); print $3 }' \
    fuzz/Cargo.lock)
  for out in "$MAIN_TARGET_DIR"/*/build/librocksdb-sys-*/out; do
    [[ -f $out/librocksdb.a ]] || continue
    # The build script's output names its crate's directory once it has finished.
    grep -qF "librocksdb-sys-$version" "$out/../output" 2>/dev/null || continue
    stamp=$(stat -c %Y "$out/librocksdb.a")
    if ((stamp > newest)); then
      newest=$stamp
      best=$out
    fi
  done
  if [[ -z $best ]]; then
    echo "fuzz: no compiled RocksDB (librocksdb-sys $version, the version fuzz/Cargo.lock" \
      "names) in $MAIN_TARGET_DIR; build the workspace first ('make test-rust' or 'cargo build" \
      "--workspace --all-targets'), and if Cargo.lock names another version, update" \
      "fuzz/Cargo.lock to match ('cargo update -p librocksdb-sys' in fuzz/)" >&2
    return 1
  fi
  echo "$best"
}

build() {
  local lib
  lib=$(rocksdb_lib_dir)
  echo "==> building the fuzz targets (target dir $FUZZ_TARGET_DIR; RocksDB from $lib)"
  # cargo-fuzz passes unstable flags to rustc: RUSTC_BOOTSTRAP lets the stable toolchain take
  # them. Without a sanitizer (-s none) nothing else needs a nightly compiler.
  RUSTC_BOOTSTRAP=1 ROCKSDB_LIB_DIR="$lib" ROCKSDB_STATIC=1 CARGO_TARGET_DIR="$FUZZ_TARGET_DIR" \
    "$CARGO_FUZZ" fuzz build -s none --codegen-units 16 --target-dir "$FUZZ_TARGET_DIR"
}

# run MODE SECONDS TARGET: one line, and the status 1 if the target crashed.
run_one() {
  local mode=$1 seconds=$2 target=$3 work corpus log execs crashes status=0
  local bin="$BIN_DIR/$target"
  if [[ ! -x $bin ]]; then
    echo "fuzz: $bin is missing; run 'make fuzz-build'" >&2
    return 1
  fi
  work=$(mktemp -d)
  if [[ $mode == smoke ]]; then
    corpus="$work/corpus"
  else
    corpus="fuzz/corpus/$target"
  fi
  mkdir -p "$corpus" "$work/artifacts"
  log="$work/log"
  # New inputs go to the first directory; the seeds are read, never written.
  "$bin" "$corpus" "fuzz/seeds/$target" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  crashes=$(find "$work/artifacts" -type f | wc -l)
  printf '%-18s executions %10s  crashes %s\n' "$target" "${execs:-?}" "$crashes"
  if ((crashes > 0 || status != 0)); then
    mkdir -p "fuzz/artifacts/$target"
    find "$work/artifacts" -type f -exec cp {} "fuzz/artifacts/$target/" \;
    {
      echo "---- $target (exit status $status); inputs copied to fuzz/artifacts/$target/"
      grep -E -m1 -A8 'panicked at|ERROR: libFuzzer|memory allocation of' "$log" || tail -n 20 "$log"
      grep -E '^(INFO: Seed|MS:|SUMMARY)' "$log"
    } >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work"
}

run() {
  local mode=$1 seconds=$2 failed=0 target
  shift 2
  local targets=("$@")
  if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(all_targets)
  fi
  echo "==> fuzzing ${#targets[@]} targets for ${seconds}s each ($mode)"
  for target in "${targets[@]}"; do
    run_one "$mode" "$seconds" "$target" || failed=1
  done
  if ((failed)); then
    echo "fuzz: a target crashed or failed to run (see above)" >&2
    return 1
  fi
}

case "${1:-}" in
  build) build ;;
  smoke | run)
    [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "usage: $0 $1 SECONDS [TARGET...]" >&2; exit 2; }
    run "$@"
    ;;
  *)
    echo "usage: $0 build | smoke SECONDS [TARGET...] | run SECONDS [TARGET...]" >&2
    exit 2
    ;;
esac
