#!/usr/bin/env bash
# The checkpoint/restore benchmark (issue 3, item 11): brings up the stack and the local cluster if needed, then
#   1. `podmigrate bench codecs` on a memhog-like CRIU image dir (incompressible pages + small files) on tmpfs,
#   2. `podmigrate bench share`: the checkpoint store on a local directory against an SMB share (Samba on loopback
#      serving a directory on the same disk, published through one smbnetfs mount and verified through another),
#   3. `podmigrate bench migration` with the arguments given here (default sizes 64,256,1024,2048 MiB): ours (agent
#      checkpoint to the share + agent restores of it on node-b, one per --methods: cri-image, direct) side by side
#      with the raw floor (CRIU dump to tmpfs + zstd -T0 -1; zstd -d + CRIU restore) on the same memhog pod, with
#      ratios and a memory digest check of every restored copy,
# and writes bench-results/<date>.txt and .json (and .png when gnuplot is installed; it is not required).
# Usage: scripts/bench.sh [bench migration args, e.g. --sizes 64,256,1024 --repeat 3 --pattern text --codecs zstd,none]
# Env: PODMIGRATE_CLI (default: build src/PodMigrate.Cli in Release), BENCH_CODEC_MIB (default 256), PODMIGRATE_RUNTIME and
# BENCH_RUNTIME_CALLS (default 200) for `bench runtime` (podmigrate-runc's pass-through overhead, between the two).
# Env: PODMIGRATE_CLI (default: build src/PodMigrate.Cli in Release), BENCH_CODEC_MIB (default 256),
#      BENCH_SHARE_MIB (default 256; 0 skips the share section).
# Leaves the cluster up (scripts/cluster.sh down stops it).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "the benchmark drives containerd, runc and CRIU and needs root (sudo scripts/bench.sh)"

if ! scripts/lib/stack-ready.sh; then
  log "the node stack is missing: running scripts/setup.sh"
  scripts/setup.sh
fi

if [ -z "${PODMIGRATE_CLI:-}" ]; then
  log "building the CLI (Release)"
  dotnet build src/PodMigrate.Cli -c Release -nologo -v q -clp:ErrorsOnly
  PODMIGRATE_CLI="$REPO/src/PodMigrate.Cli/bin/Release/net10.0/podmigrate"
fi
export PODMIGRATE_CLI PODMIGRATE_REPO="$REPO"
[ -x "$PODMIGRATE_CLI" ] || die "PODMIGRATE_CLI=$PODMIGRATE_CLI is not executable"

log "bringing up the local cluster (starts only what is missing)"
scripts/cluster.sh up >&2

out="$REPO/bench-results"
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
txt="$out/$stamp.txt" json="$out/$stamp.json"
work=$(mktemp -d /dev/shm/podmigrate-bench-sh.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A memhog-like CRIU image dir: memhog's pages are a splitmix64 stream, as incompressible as /dev/urandom.
mib=${BENCH_CODEC_MIB:-256}
mkdir -p "$work/images"
head -c "$((mib << 20))" /dev/urandom > "$work/images/pages-1.img"
for f in core-1 mm-1 pagemap-1 files fdinfo-2 inventory; do head -c 4096 /dev/urandom > "$work/images/$f.img"; done

{
  echo "# podmigrate benchmark $stamp on $(hostname) ($(nproc) cores, kernel $(uname -r))"
  echo "# $("$PODMIGRATE_CLI" version 2>/dev/null | head -1)"
  # Which agent binary the nodes run (PODMIGRATE_AGENT_BIN: podmigrate-agent NativeAOT, else the CLI's `agent` verb).
  for pidfile in "${PODMIGRATE_RUN_DIR:-/run/podmigrate}"/*/agent.pid; do
    echo "# agents: $(readlink "/proc/$(cat "$pidfile")/exe" 2>/dev/null || echo unknown)"
    break
  done
  echo
  echo "## bench codecs: $mib MiB memhog-like image dir (tmpfs)"
} > "$txt"
log "bench codecs ($mib MiB)"
"$PODMIGRATE_CLI" bench codecs --input "$work/images" >> "$txt"
"$PODMIGRATE_CLI" bench codecs --input "$work/images" -o json > "$work/codecs.json"

share_mib=${BENCH_SHARE_MIB:-256}
if [ "$share_mib" != 0 ]; then
  # The same memhog-like dir, published to a local directory and to an SMB share whose server keeps it on the same disk.
  head -c "$((share_mib << 20))" "$work/images/pages-1.img" > "$work/pages" 2>/dev/null || true
  [ "$(stat -c %s "$work/pages")" -ge "$((share_mib << 20))" ] || head -c "$((share_mib << 20))" /dev/urandom > "$work/pages"
  mkdir -p "$work/share-input/checkpoint"
  mv "$work/pages" "$work/share-input/checkpoint/pages-1.img"
  cp "$work"/images/{core-1,mm-1,inventory}.img "$work/share-input/checkpoint/"
  disk=$(mktemp -d /var/tmp/podmigrate-bench-share.XXXXXX)
  smb_state="$disk/smb-state"
  "$REPO/scripts/lib/smb-share.sh" up --state "$smb_state" --path "$disk/smb-server" writer="$disk/mnt-writer" reader="$disk/mnt-reader" >/dev/null
  mkdir -p "$disk/local"
  {
    echo
    echo "## bench share: $share_mib MiB memhog-like checkpoint, local directory vs SMB (Samba on loopback, smbnetfs)"
  } >> "$txt"
  log "bench share ($share_mib MiB: local directory vs SMB)"
  share_rc=0
  "$PODMIGRATE_CLI" bench share --input "$work/share-input" --repeat 3 \
    --share "local=$disk/local" --share "smb=$disk/mnt-writer/ckpt:$disk/mnt-reader/ckpt" >> "$txt" || share_rc=$?
  "$REPO/scripts/lib/smb-share.sh" down --state "$smb_state" || true
  rm -rf "$disk" "$work/share-input"
  [ "$share_rc" = 0 ] || die "bench share failed ($share_rc)"
fi
rm -rf "$work/images"

# The restore runtime's per-call pass-through overhead (issue 9 item 1: goal under 5 ms): runc and podmigrate-runc side
# by side on --version, list and state of a running container.
runtime_bin=${PODMIGRATE_RUNTIME:-/opt/podmigrate/runtime/podmigrate-runc}
echo >> "$txt"
echo "## bench runtime ($runtime_bin)" >> "$txt"
log "bench runtime"
"$PODMIGRATE_CLI" bench runtime --runtime "$runtime_bin" --calls "${BENCH_RUNTIME_CALLS:-200}" >> "$txt"

echo >> "$txt"
echo "## bench migration $*" >> "$txt"
log "bench migration $*"
rc=0
"$PODMIGRATE_CLI" bench migration --json-out "$work/migration.json" "$@" 2> >(tee "$work/migration.log" >&2) >> "$txt" || rc=$?
echo >> "$txt"
echo "## progress log" >> "$txt"
cat "$work/migration.log" >> "$txt"

/usr/bin/python3 - "$work/codecs.json" "$work/migration.json" "$json" "$stamp" <<'PY'
import json, sys, os
codecs, migration, target, stamp = sys.argv[1:5]
load = lambda p: json.load(open(p)) if os.path.exists(p) and os.path.getsize(p) > 0 else None
json.dump({"date": stamp, "codecs": load(codecs), "migration": load(migration)}, open(target, "w"), indent=2)
PY

if command -v gnuplot >/dev/null && [ -s "$work/migration.json" ]; then
  /usr/bin/python3 - "$work/migration.json" > "$work/plot.dat" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["rows"]:
    print(r["sizeMib"], r["codec"], r["checkpointTotal"], r["floorCheckpointTotal"], r["restoreTotal"], r["floorRestoreTotal"])
PY
  gnuplot <<GP || log "gnuplot failed; no PNG"
set terminal pngcairo size 900,500
set output "$out/$stamp.png"
set title "podmigrate: checkpoint and restore vs raw CRIU + zstd (seconds)"
set xlabel "memory (MiB)"; set ylabel "seconds"; set key left top; set grid
set logscale x 2
plot "$work/plot.dat" using 1:3 with linespoints title "ours checkpoint", \
     "" using 1:4 with linespoints title "floor dump+zstd", \
     "" using 1:5 with linespoints title "ours restore", \
     "" using 1:6 with linespoints title "floor zstd -d+restore"
GP
fi

cat "$txt"
log "results: $txt $json$( [ -f "$out/$stamp.png" ] && echo " $out/$stamp.png")"
exit "$rc"
