#!/usr/bin/env bash
# The main job, on one machine: bring up the local cluster (nodes, registry, agents), run the stateful counter pod on
# node-a, migrate it to node-b with its in-memory state, and show the counter before and after with the timings.
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
PM=$PODMIGRATE_CLI

say "bringing up the local cluster (containerd + CRI per node, registry, agents)"
scripts/cluster.sh up
for node in node-a node-b; do $PM info --node "$node" | sed "s/^/  /"; echo; done

say "running the counter pod on node-a through CRI, like a kubelet"
for node in node-a node-b; do $PM node rm-pod --node "$node" default/counter >/dev/null 2>&1 || true; done
$PM node run-pod --node node-a -f deploy/examples/counter-pod.yaml
count() { $PM node exec --node "$1" default/counter -- cat /tmp/count | tr -d '\n'; }
sleep 3
before=$(count node-a)
echo "counter on node-a: $before (it counts in memory every 100 ms)"

say "migrating default/counter from node-a to node-b"
$PM migrate --from node-a --to node-b --pod default/counter

say "after the migration"
sleep 1
after=$(count node-b)
echo "counter on node-b: $after (went on from its checkpointed value; it did not restart from 0)"
[ "$after" -gt "$before" ] || die "the counter on node-b ($after) did not go on from node-a's ($before)"
echo
echo "pods on node-a:"; $PM node pods --node node-a
echo "pods on node-b:"; $PM node pods --node node-b
echo
echo "checkpoints on the share:"; $PM checkpoints ls --node node-b
