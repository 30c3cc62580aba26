#!/usr/bin/env bash
# Load and soak on the local cluster (issue 12 item 5). Needs a cluster that is up with at least 3 nodes
# (`scripts/cluster.sh up --nodes 3`, with the same PODMIGRATE_RUN_DIR/STATE_DIR as here).
#
#   scripts/soak.sh [--concurrent 20] [--cycles 200] [--verify-window 1s] [--out DIR] [--skip-load] [--skip-cycles]
#                   [--warmup 25] [--flat-percent 10] [--until HH:MM]
#   scripts/soak.sh --close DIR
#
# Load: N counter pods spread round-robin over the nodes, then N PodMigrations at once, each to the next node; all
# must end Succeeded. Soak: one counter pod migrated M times round the nodes, one migration at a time (each clone is a
# gated pod the migration fills, so names stay short: soak-cycle-a / soak-cycle-b); every one must succeed and the
# clone's counter must go on from at least the value the source showed before the migration.
# Before, between and after: `podmigrate soak census` (containerd's API and the agents' directories: tasks, frozen
# tasks, snapshots, checkpoint images, leases, staging, prepared checkpoints, journal entries, checkpoint mounts,
# share entries, and each agent's RSS and open files). Leftovers are what the census holds after a phase beyond what
# it held before it. Each agent's memory (RSS, anon/file/shmem) and open files are written after every cycle
# (memory.txt); they are flat when their values at the last cycle are within --flat-percent of those after the
# --warmup cycle. Exit 0 only with zero failures, zero leftovers and flat agents.
# --until HH:MM (UTC) starts no cycle after that time and closes the run as if it had ended there. --close DIR closes a
# soak run in DIR that was stopped between cycles (its pods removed, its end census compared, the flatness verdict).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${PODMIGRATE_RUN_DIR:-/run/podmigrate}
read -r -a CLI <<< "${PODMIGRATE_CLI:-podmigrate}"
export KUBECONFIG=${KUBECONFIG:-$RUN/kubeconfig}
CONCURRENT=20
CYCLES=200
VERIFY=1s
OUT=$REPO/soak-results/$(date -u +%Y%m%dT%H%M%SZ)
SKIP_LOAD=0
SKIP_CYCLES=0
WARMUP=25
FLAT_PERCENT=10
UNTIL=
CLOSE=0
NS=soak

while [ $# -gt 0 ]; do
  case $1 in
    --concurrent) CONCURRENT=$2; shift ;;
    --cycles) CYCLES=$2; shift ;;
    --verify-window) VERIFY=$2; shift ;;
    --out) OUT=$2; shift ;;
    --skip-load) SKIP_LOAD=1 ;;
    --skip-cycles) SKIP_CYCLES=1 ;;
    --warmup) WARMUP=$2; shift ;;
    --until) UNTIL=$2; shift ;;
    --close) CLOSE=1; OUT=$2; shift ;;
    --flat-percent) FLAT_PERCENT=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '\033[1m[soak]\033[0m %s\n' "$*" >&2; }
die() { printf '[soak] error: %s\n' "$*" >&2; exit 1; }
mkdir -p "$OUT"
mapfile -t NODES < <(jq -r '.nodes[].name' "$RUN/cluster.json")
[ "${#NODES[@]}" -ge 3 ] || die "the cluster at $RUN has ${#NODES[@]} nodes; run scripts/cluster.sh up --nodes 3"
REGISTRY=$(jq -r .registry "$RUN/cluster.json")
IMAGE=$REGISTRY/podmigrate/counter:1
FAILURES=0
LEFTOVERS=0

# Go durations as the status writes them (1m47.447s, 970ms, 5.9s) in seconds.
JQ_SECS='def secs: if endswith("ms") then (rtrimstr("ms") | tonumber / 1000)
  elif test("m") then (split("m") as $p | ($p[0] | tonumber) * 60 + ($p[1] | rtrimstr("s") | if . == "" then 0 else tonumber end))
  else (rtrimstr("s") | tonumber) end;'

census() { "${CLI[@]}" soak census > "$OUT/census-$1.json"; }

print_agents() {
  jq -r --arg when "$1" '.nodes[] | "\($when) \(.name): agent RSS \(.agentRssKiB) KiB (anon \(.agentAnonKiB), file \(.agentFileKiB), shmem \(.agentShmemKiB)), open files \(.agentOpenFiles), threads \(.agentThreads)"' "$OUT/census-$1.json" >&2
}

# One line per node after each soak cycle: cycle node rss anon file shmem fds (KiB, from the agents' /proc), then the
# managed heap from the agent's /metrics as of its last GC: large-object heap, whole heap and committed (KiB; - when the
# metrics do not answer).
sample_agents() { # cycle
  local node pid port gc
  for node in "${NODES[@]}"; do
    pid=$(cat "$RUN/$node/agent.pid" 2>/dev/null) || continue
    [ -r "/proc/$pid/status" ] || continue
    port=$(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .agentPort + 1000' "$RUN/cluster.json")
    gc=$(curl -fs --max-time 3 "http://127.0.0.1:$port/metrics" | awk '
      /^dotnet_gc_last_collection_heap_size_bytes/ {h += $2; if ($1 ~ /"loh"/) l = $2}
      /^dotnet_gc_last_collection_memory_committed_size_bytes/ {m = $2}
      END {if (m != "") printf "%d %d %d", l / 1024, h / 1024, m / 1024}') || true
    awk -v c="$1" -v n="$node" -v f="$(ls "/proc/$pid/fd" | wc -l)" -v g="${gc:-- - -}" '
      /^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {fi=$2} /^RssShmem:/ {s=$2}
      END {print c, n, r, a, fi, s, f, g}' "/proc/$pid/status" >> "$OUT/memory.txt"
  done
}

# Flat: each agent's RSS and open files at the last cycle within FLAT_PERCENT of their values after the warm-up cycle
# (by then every code path of a migration has run once: what the JIT and the mapped assemblies add stops there).
check_flat() {
  local verdict rc
  verdict=$(awk -v w="$WARMUP" -v last="$1" -v p="$FLAT_PERCENT" '
    $1 == w {rss[$2] = $3; fds[$2] = $7}
    $1 == last {rss2[$2] = $3; fds2[$2] = $7}
    END {
      bad = 0
      for (n in rss) {
        dr = (rss2[n] - rss[n]) * 100 / rss[n]; df = (fds2[n] - fds[n]) * 100 / fds[n]
        printf "%s: RSS %d KiB after cycle %d -> %d KiB after cycle %d (%+.1f%%), open files %d -> %d (%+.1f%%)\n", n, rss[n], w, rss2[n], last, dr, fds[n], fds2[n], df
        if (dr > p || df > p) bad = 1
      }
      exit bad
    }' "$OUT/memory.txt") && rc=0 || rc=$?
  printf '%s\n' "$verdict" >&2
  if [ "$rc" = 0 ]; then
    log "agents flat: RSS and open files within ${FLAT_PERCENT}% of their values after warm-up (cycle $WARMUP)"
  else
    log "agents NOT flat: RSS or open files grew more than ${FLAT_PERCENT}% after warm-up (cycle $WARMUP)"
    FAILURES=$((FAILURES + 1))
  fi
}

# What a census holds beyond the baseline: every counter except the agents' RSS/fds/pid (reported separately). Image
# layers (committed snapshots, images) are compared with the census taken once the workload's images were pulled
# (`warm`): a node keeps the images its pods ran from, as a kubelet's node does.
compare() {
  local before=$1 after=$2 warm=$3 diff
  diff=$(jq -n --slurpfile a "$OUT/census-$before.json" --slurpfile b "$OUT/census-$after.json" --slurpfile w "$OUT/census-$warm.json" '
    [ ($b[0].nodes[] ) as $n | ($a[0].nodes[] | select(.name == $n.name)) as $m
      | ["tasks","frozenTasks","activeSnapshots","checkpointImages","leases","stagingEntries","preparedEntries","journalEntries","checkpointMounts"][]
      | select($n[.] > $m[.]) | "\($n.name) \(.): \($m[.]) -> \($n[.])" ]
    + [ ($b[0].nodes[] ) as $n | ($w[0].nodes[] | select(.name == $n.name)) as $m
      | ["snapshots","images"][]
      | select($n[.] > $m[.]) | "\($n.name) \(.): \($m[.]) (warm) -> \($n[.])" ]
    + ( if $b[0].shareEntries > $a[0].shareEntries then ["share entries: \($a[0].shareEntries) -> \($b[0].shareEntries)"] else [] end )
    + ( if $b[0].sharePartials > 0 then ["share partials: \($b[0].sharePartials)"] else [] end )
    + [ $b[0].nodes[] | select(.frozenTasks > 0) | "\(.name) frozen tasks: \(.frozenTasks)" ] | unique | .[]')
  if [ -n "$diff" ]; then
    log "LEFTOVERS after $after (against $before):"
    printf '  %s\n' "$diff" >&2
    LEFTOVERS=$((LEFTOVERS + $(printf '%s\n' "$diff" | wc -l)))
  else
    log "no leftovers after $after"
  fi
}

pod_yaml() { # name node [gated]
  local gated=""
  if [ "${3:-}" = gated ]; then gated="  schedulingGates: [{name: podmigrate.io/clone-of}]"; fi
  cat <<EOF
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: $NS, labels: {app: soak, soak: $4}}
spec:
  nodeName: $2
$gated
  terminationGracePeriodSeconds: 2
  containers:
    - name: counter
      image: $IMAGE
      env: [{name: COUNTER_INTERVAL_MS, value: "100"}, {name: PORT, value: "8080"}]
      ports: [{name: http, containerPort: 8080}]
      readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
EOF
}

migration_yaml() { # name pod target [clonePod]
  cat <<EOF
apiVersion: podmigrate.io/v1alpha1
kind: PodMigration
metadata: {name: $1, namespace: $NS}
spec: {podName: $2, targetNode: $3, mode: Migrate, verifyWindow: $VERIFY, deadline: 10m${4:+, clonePodName: $4}}
EOF
}

# The counter a pod shows (its /tmp/count), read through its node's CRI (exec).
counter_of() { # pod node
  "${CLI[@]}" node exec --node "$2" "$NS/$1" -- cat /tmp/count 2>/dev/null | tr -dc '0-9'
}

wait_ready() { # label-selector count timeout-s
  local deadline=$((SECONDS + $3)) ready
  while :; do
    ready=$(kubectl get pods -n "$NS" -l "$1" -o json | jq '[.items[] | select(.status.conditions // [] | any(.type == "Ready" and .status == "True"))] | length')
    if [ "$ready" -ge "$2" ]; then return 0; fi
    [ $SECONDS -lt $deadline ] || die "only $ready of $2 pods ($1) Ready after $3 s"
    sleep 1
  done
}

wait_pods_gone() { # label-selector timeout-s
  local deadline=$((SECONDS + $2))
  while [ "$(kubectl get pods -n "$NS" -l "$1" -o json | jq '.items | length')" -gt 0 ]; do
    [ $SECONDS -lt $deadline ] || die "pods $1 still there after $2 s"
    sleep 1
  done
}

# The end of the soak phase: the flatness verdict, the pods removed, the end census compared with the start (image
# layers with the warm census).
close_cycles() { # wall-time
  local last_cycle
  last_cycle=$(awk 'END {print $1}' "$OUT/memory.txt" 2>/dev/null)
  if [ -n "$last_cycle" ] && [ "$last_cycle" -gt "$WARMUP" ]; then
    check_flat "$last_cycle"
  else
    log "soak: not past the warm-up (cycle $WARMUP): no flatness verdict"
  fi
  log "soak: $(grep -c ' Succeeded ' "$OUT/cycles.txt" || true) of $(wc -l < "$OUT/cycles.txt") cycles Succeeded in $1 ($OUT/cycles.txt)"
  kubectl delete podmigrations -n "$NS" --all --wait=false > /dev/null
  kubectl delete pods -n "$NS" -l soak=cycle --wait=false > /dev/null
  wait_pods_gone soak=cycle 300
  census end
  compare start end "$([ -f "$OUT/census-load-ready.json" ] && echo load-ready || { [ -f "$OUT/census-cycles-warm.json" ] && echo cycles-warm || echo cycles-ready; })"
}

if [ "$CLOSE" = 1 ]; then
  [ -f "$OUT/census-start.json" ] && [ -f "$OUT/memory.txt" ] || die "$OUT is not a soak run (no census-start.json or memory.txt)"
  FAILURES=$(grep -vc ' Succeeded ' "$OUT/cycles.txt" || true)
  close_cycles "(closed with --close)"
  census final
  print_agents start
  print_agents final
  log "failures: $FAILURES, leftovers: $LEFTOVERS (results in $OUT)"
  [ "$FAILURES" = 0 ] && [ "$LEFTOVERS" = 0 ]
  exit
fi

kubectl apply -f - > /dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
EOF

census start
print_agents start

if [ "$SKIP_LOAD" = 0 ]; then
  log "load: $CONCURRENT counter pods over ${#NODES[@]} nodes"
  for i in $(seq 0 $((CONCURRENT - 1))); do
    pod_yaml "soak-load-$i" "${NODES[$((i % ${#NODES[@]}))]}" "" load
    echo ---
  done | kubectl apply -f - > /dev/null
  wait_ready soak=load "$CONCURRENT" 600
  census load-ready
  log "load: $CONCURRENT PodMigrations at once"
  started=$SECONDS
  for i in $(seq 0 $((CONCURRENT - 1))); do
    migration_yaml "soak-load-$i" "soak-load-$i" "${NODES[$(((i + 1) % ${#NODES[@]}))]}"
    echo ---
  done | kubectl apply -f - > /dev/null
  deadline=$((SECONDS + 1200))
  while :; do
    kubectl get podmigrations -n "$NS" -o json > "$OUT/load-migrations.json"
    done_count=$(jq '[.items[] | select(.metadata.name | startswith("soak-load-")) | select(.status.phase == "Succeeded" or .status.phase == "Failed" or .status.phase == "RolledBack")] | length' "$OUT/load-migrations.json")
    if [ "$done_count" -ge "$CONCURRENT" ]; then break; fi
    [ $SECONDS -lt $deadline ] || { log "load: only $done_count of $CONCURRENT finished in 1200 s"; break; }
    sleep 2
  done
  load_wall=$((SECONDS - started))
  succeeded=$(jq '[.items[] | select(.status.phase == "Succeeded")] | length' "$OUT/load-migrations.json")
  FAILURES=$((FAILURES + CONCURRENT - succeeded))
  jq -r '.items[] | "\(.metadata.name) \(.status.phase) \(.status.sourceNode)->\(.status.targetNode) downtime \(.status.downtime // "-") total \(.status.timings.total // "-")\(if .status.phase != "Succeeded" then " : " + (.status.message // "") else "" end)"' "$OUT/load-migrations.json" > "$OUT/load-summary.txt"
  jq -r "$JQ_SECS"' [.items[] | .status | [(.timings.total // empty | secs), (.downtime // empty | secs)]] as $t
    | ([$t[][0]] | sort) as $total | ([$t[][1]] | sort) as $down
    | "load: per migration total min \($total[0])s median \($total[$total|length/2|floor])s max \($total[-1])s; downtime min \($down[0])s median \($down[$down|length/2|floor])s max \($down[-1])s"' \
    "$OUT/load-migrations.json" | tee "$OUT/load-figures.txt" >&2
  log "load: $succeeded of $CONCURRENT Succeeded in ${load_wall}s (summary: $OUT/load-summary.txt)"
  grep -v " Succeeded " "$OUT/load-summary.txt" >&2 || true
  kubectl delete podmigrations -n "$NS" --all --wait=false > /dev/null
  kubectl delete pods -n "$NS" -l soak=load --wait=false > /dev/null
  wait_pods_gone soak=load 300
  census load-end
  compare start load-end load-ready
  print_agents load-end
fi

if [ "$SKIP_CYCLES" = 0 ] && [ "$CYCLES" -gt 0 ]; then
  log "soak: $CYCLES migrations of one pod, round the nodes"
  cur=soak-cycle-a
  node_index=0
  pod_yaml "$cur" "${NODES[0]}" "" cycle | kubectl apply -f - > /dev/null
  wait_ready "soak=cycle" 1 300
  census cycles-ready
  : > "$OUT/cycles.txt"
  : > "$OUT/memory.txt"
  sample_agents 0
  started=$SECONDS
  for i in $(seq 1 "$CYCLES"); do
    next=$([ "$cur" = soak-cycle-a ] && echo soak-cycle-b || echo soak-cycle-a)
    from=${NODES[$node_index]}
    node_index=$(((node_index + 1) % ${#NODES[@]}))
    to=${NODES[$node_index]}
    before=$(counter_of "$cur" "$from" || true)
    pod_yaml "$next" "" gated cycle | sed '/^  nodeName: $/d' | kubectl apply -f - > /dev/null
    migration_yaml "soak-cycle-$i" "$cur" "$to" "$next" | kubectl apply -f - > /dev/null
    deadline=$((SECONDS + 300))
    while :; do
      phase=$(kubectl get podmigration -n "$NS" "soak-cycle-$i" -o json | jq -r '.status.phase // ""')
      case $phase in Succeeded|Failed|RolledBack) break ;; esac
      [ $SECONDS -lt $deadline ] || { phase=Timeout; break; }
      sleep 0.5
    done
    status=$(kubectl get podmigration -n "$NS" "soak-cycle-$i" -o json | jq -c '.status | {phase, downtime, total: .timings.total, message}')
    after=""
    if [ "$phase" = Succeeded ]; then
      after=$(counter_of "$next" "$to" || true)
      if [ -n "$before" ] && { [ -z "$after" ] || [ "$after" -lt "$before" ]; }; then
        phase="CounterWentBack($before->$after)"
      fi
    fi
    echo "$i $from->$to $phase counter $before->$after $status" >> "$OUT/cycles.txt"
    if [[ $phase != Succeeded ]]; then
      FAILURES=$((FAILURES + 1))
      log "soak: cycle $i FAILED: $phase $status"
      break
    fi
    kubectl delete podmigration -n "$NS" "soak-cycle-$i" > /dev/null
    # Migrate deletes the source pod; its name is reused two cycles on, so wait until it is gone.
    deadline=$((SECONDS + 120))
    while kubectl get pod -n "$NS" "$cur" > /dev/null 2>&1; do
      [ $SECONDS -lt $deadline ] || die "source pod $cur still there after cycle $i"
      sleep 0.5
    done
    cur=$next
    sample_agents "$i"
    # Every node has now run the pod once (and pulled its image): the image layers to compare with after --skip-load.
    if [ "$i" = "${#NODES[@]}" ]; then census cycles-warm; fi
    if [ -n "$UNTIL" ] && [ "$(date -u +%H:%M)" \> "$UNTIL" ] && [ "$i" -lt "$CYCLES" ]; then
      log "soak: stopped after cycle $i of $CYCLES (--until $UNTIL UTC)"
      break
    fi
    if [ $((i % 25)) = 0 ]; then
      census "cycle-$i"
      log "soak: $i cycles in $((SECONDS - started))s; $(jq -r '[.nodes[] | "\(.name) RSS \(.agentRssKiB)KiB (anon \(.agentAnonKiB)) fds \(.agentOpenFiles)"] | join(", ")' "$OUT/census-cycle-$i.json")"
      log "soak: managed heap after cycle $i: $(awk -v c="$i" '$1 == c {printf "%s LOH %s KiB heap %s KiB committed %s KiB; ", $2, $8, $9, $10}' "$OUT/memory.txt")"
    fi
  done
  close_cycles "$((SECONDS - started))s"
fi

census final
print_agents start
print_agents final
log "failures: $FAILURES, leftovers: $LEFTOVERS (results in $OUT)"
[ "$FAILURES" = 0 ] && [ "$LEFTOVERS" = 0 ]
