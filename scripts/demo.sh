#!/usr/bin/env bash
# The main job, on one machine: bring up the local cluster (nodes, registry, agents), run the stateful counter pod
# on node-a, migrate it to node-b with its in-memory state, and show the counter before and after with the timings.
# Installs the stack first (scripts/setup.sh) when it is missing. Leaves the cluster up: `scripts/cluster.sh down`.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
say() { printf '\n\033[1;36m== %s\033[0m\n' "$*"; }
die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "the demo runs containerd, runc and CRIU and needs root (sudo scripts/demo.sh)"

if ! scripts/lib/stack-ready.sh 2>/dev/null || ! command -v podmigrate >/dev/null; then
  say "installing the node stack (scripts/setup.sh)"
  scripts/setup.sh
fi
PM=${PODMIGRATE_CLI:-podmigrate}

say "bringing up the local cluster"
scripts/cluster.sh up
scripts/cluster.sh status || true

say "running the counter pod on every node through CRI, like a kubelet"
for node in node-a node-b; do
  $PM node rm-pod --node "$node" default/counter >/dev/null 2>&1 || true
  $PM node run-pod --node "$node" -f deploy/examples/counter-pod.yaml
done
sleep 2
for node in node-a node-b; do
  say "pods on $node"
  $PM node pods --node "$node"
  printf 'counter on %s: ' "$node"; $PM node exec --node "$node" default/counter -- cat /tmp/count; echo
done
