#!/usr/bin/env bash
# Fuzzes what reads untrusted bytes with SharpFuzz + AFL++ (Debian's afl++): the checkpoint archive reader, checkpoint
# ids and archive paths, and the restore runtime's command line (tests/PodMigrate.Fuzz).
# Installs what it needs (afl++, the sharpfuzz tool), builds the harness, instruments PodMigrate.Core.dll and podmigrate-runc.dll in a copy,
# writes seed corpora with the project's own archive writer, runs afl-fuzz for N inputs per harness (one at a time),
# and prints execs, exec/s, crashes and hangs. Not part of scripts/test.sh: the inputs that found bugs are replayed
# in CI as ordinary tests (tests/PodMigrate.Core.Tests/Fuzz; runtime-cmdline: tests/PodMigrate.Runtime.Tests/Fuzz).
# Usage: scripts/fuzz.sh [--execs N] [--out DIR] [--timeout-ms MS] [harness...]   (default: 1000000 execs, all wired)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

log() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }
die() { printf '[fuzz] error: %s\n' "$*" >&2; exit 1; }

execs=1000000
out=/var/tmp/podmigrate-fuzz
timeout_ms=5000
harnesses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --execs) execs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --timeout-ms) timeout_ms=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) harnesses+=("$1"); shift ;;
  esac
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=(archive paths runtime-cmdline)

tools=/opt/podmigrate/fuzz-tools
if ! command -v afl-fuzz >/dev/null; then
  log "installing afl++ (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q afl++ >/dev/null
fi
if [ ! -x "$tools/sharpfuzz" ]; then
  log "installing the sharpfuzz tool 2.3.0"
  dotnet tool install --tool-path "$tools" SharpFuzz.CommandLine --version 2.3.0 >/dev/null
fi

log "building tests/PodMigrate.Fuzz"
# Instrumented code only runs under afl-fuzz (it writes to AFL's shared memory): seeds and replays use the plain copy.
plain="$out/plain" bin="$out/bin"
rm -rf "$plain" "$bin" "$out/seeds"
dotnet publish tests/PodMigrate.Fuzz -c Release -nologo -v q -clp:ErrorsOnly -o "$plain" >/dev/null
cp -a "$plain" "$bin"
"$tools/sharpfuzz" "$bin/PodMigrate.Core.dll" >/dev/null
"$tools/sharpfuzz" "$bin/podmigrate-runc.dll" >/dev/null   # runtime-cmdline: the runtime's argv parser
"$plain/PodMigrate.Fuzz" seeds "$out/seeds"

# A shared machine: no CPU binding, no core_pattern or governor changes; the target is not AFL-compiled.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FAST_CAL=1 DOTNET_TieredPGO=0

summary=()
for harness in "${harnesses[@]}"; do
  if ! "$plain/PodMigrate.Fuzz" wired "$harness"; then
    log "$harness: no target in this build (see RuntimeCommandLineHarness): skipped"
    summary+=("$harness: skipped (not wired)")
    continue
  fi
  findings="$out/findings/$harness"
  rm -rf "$findings"
  mkdir -p "$findings"
  log "$harness: afl-fuzz for $execs inputs (log: $findings.log)"
  start=$(date +%s)
  nice -n 19 afl-fuzz -i "$out/seeds/$harness" -o "$findings" -t "$timeout_ms" -m none -E "$execs" \
    -- "$bin/PodMigrate.Fuzz" run "$harness" >"$findings.log" 2>&1 || { tail -30 "$findings.log" >&2; die "$harness: afl-fuzz failed"; }
  stats="$findings/default/fuzzer_stats"
  get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
  line="$harness: $(get execs_done) execs in $(( $(date +%s) - start )) s ($(get execs_per_sec) exec/s at the end), corpus $(get corpus_count), edges $(get edges_found), crashes $(get saved_crashes), hangs $(get saved_hangs)"
  log "$line"
  summary+=("$line")
  for kind in crashes hangs; do
    if compgen -G "$findings/default/$kind/id:*" >/dev/null; then
      log "$harness $kind: $findings/default/$kind (replay: $plain/PodMigrate.Fuzz replay $harness $findings/default/$kind)"
    fi
  done
done

log "summary"
printf '  %s\n' "${summary[@]}"
