#!/usr/bin/env bash
# The main job, on one machine, the way a cluster user does it: bring up the local cluster (two containerd nodes, the
# registry, an agent per node, the Kubernetes API server with a node emulator per node in the kubelet's place, and the
# controller), start the stateful counter pod on node-a with kubectl, `kubectl apply` a PodMigration that moves it to
# node-b, watch it with `kubectl get podmigrations -w`, and show the counter before and after with the phase timings.
# Installs the stack first (scripts/setup.sh) when it is missing. Leaves the cluster up: `scripts/cluster.sh down`.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }
die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "the demo runs containerd, runc and CRIU and needs root (sudo scripts/demo.sh)"

if ! scripts/lib/stack-ready.sh; then
  say "installing the node stack (scripts/setup.sh)"
  scripts/setup.sh
fi
say "building PodMigrate"
dotnet build src/PodMigrate.Cli -c Release -nologo -v q -clp:ErrorsOnly
export PODMIGRATE_CLI="$REPO/src/PodMigrate.Cli/bin/Release/net10.0/podmigrate"

say "bringing up the local cluster (containerd per node, registry, agents, API server, node emulators, controller)"
scripts/cluster.sh up
export KUBECONFIG=${PODMIGRATE_RUN_DIR:-/run/podmigrate}/kubeconfig
k() { echo "\$ kubectl $*"; kubectl "$@"; }
k get nodes -o wide
k get pods -A -o wide

say "starting the counter pod on node-a"
kubectl delete podmigration move-counter --ignore-not-found --wait=true >/dev/null
kubectl delete pod -l app=counter --ignore-not-found --wait=true >/dev/null
k apply -f deploy/examples/counter-pod.yaml
k wait --for=condition=Ready pod/counter --timeout=90s
count() { curl -fsS --max-time 5 "http://$(kubectl get pod "$1" -o jsonpath='{.status.podIP}'):8080/" | tr -d '\n'; }
# Until pod $1's counter answers with a value above $2, for at most $3 seconds; prints the value. (Ready is not enough
# on a busy machine: the first read may come before the server answers.)
count_above() {
  local deadline=$((SECONDS + $3)) value
  while :; do
    value=$(count "$1" 2>/dev/null || true)
    if [[ $value =~ ^[0-9]+$ ]] && [ "$value" -gt "$2" ]; then echo "$value"; return 0; fi
    [ "$SECONDS" -lt "$deadline" ] || die "the counter of pod $1 did not pass $2 within $3 s (last answer: '${value}')"
    sleep 0.2
  done
}
before=$(count_above counter 20 60)
echo "counter on node-a: $before (it counts in memory every 100 ms)"

say "asking Kubernetes to move it: kubectl apply -f deploy/examples/move-counter.yaml"
k apply -f deploy/examples/move-counter.yaml
echo "\$ kubectl get podmigrations -w"
kubectl get podmigrations -w & watcher=$!
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded podmigration/move-counter --timeout=180s >/dev/null \
  || { kill "$watcher" 2>/dev/null; k describe podmigration move-counter; die "the migration did not succeed"; }
sleep 0.5; kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true

say "after the migration"
clone=$(kubectl get podmigration move-counter -o jsonpath='{.status.clonePod}')
# The source is deleted gracefully at the commit: it may still be Terminating when the migration says Succeeded.
kubectl wait --for=delete pod/counter --timeout=90s >/dev/null || die "the source pod is still there after 90 s"
kubectl wait --for=condition=Ready "pod/$clone" --timeout=60s >/dev/null || die "the clone $clone is not Ready"
k get pods -o wide
after=$(count_above "$clone" 0 30)
echo "counter on node-b (pod $clone): $after (went on from its checkpointed value; it did not restart from 0)"
[ "$after" -ge "$before" ] || die "the counter on node-b ($after) did not go on from node-a's ($before)"
echo
echo "phase timings (status.timings) and downtime:"
kubectl get podmigration move-counter -o json \
  | jq -r '.status.timings | to_entries | sort_by(.key) | .[] | "  \(.key)\t\(.value)"' | column -t
echo "  downtime  $(kubectl get podmigration move-counter -o jsonpath='{.status.downtime}')"
echo
k describe podmigration move-counter
