#!/usr/bin/env bash
# A local multi-node "cluster" on this one host: one containerd instance per node with CRI (node-b on containerd 1.7,
# which has no restore through CRI, the others on 2.1, unless --containerd says otherwise), each with its own CNI bridge
# and pod subnet, the runtime handler `podmigrate` (podmigrate-runc, $PODMIGRATE_RUNTIME), a plain-http registry on loopback serving the workload images, and a shared
# checkpoint folder. Pods on different nodes reach each other by pod IP through the host's routing.
#
#   scripts/cluster.sh up     [--nodes N] [--containerd V,V..] [instance options]
#                                                              start (idempotent; cleans a crashed instance first);
#                                                              --containerd: per node in order a,b,..: 2.1 or 1.7
#                                                              (default 2.1,1.7,2.1,2.1)
#                                                              --share smb [--share-size 512M]: the share is served by
#                                                              Samba on loopback and each node's agent uses its own
#                                                              smbnetfs FUSE mount of it (default: --share local, one
#                                                              directory for all); --share-size puts a tmpfs of that size
#                                                              behind Samba (a share that can fill up)
#   scripts/cluster.sh up ... --node-memory Q [--oom-guard]    every node's pods together capped at Q (e.g. 1536Mi):
#                                                              one cgroup per node, /<basename $RUN>/<node>, which the
#                                                              emulator caps and reports as capacity and allocatable and
#                                                              the agent samples; --oom-guard runs the controller's guard
#   scripts/cluster.sh down   [--purge]                        stop exactly what `up` started and undo its host changes
#   scripts/cluster.sh status                                  health of every part; exits non-zero when unhealthy
#
# Layout (a contract other tools rely on; $RUN = PODMIGRATE_RUN_DIR, default /run/podmigrate):
#   $RUN/<node>/containerd.sock (+ .ttrpc, debug.sock), containerd.toml, containerd.pid, containerd-state/,
#   $RUN/<node>/prepared/ (checkpoints the agent prepared for podmigrate-runc: PODMIGRATE_PREPARED_DIR of both),
#   $RUN/<node>/agent.sock, agent.pid (agent TCP port 7440+i), $RUN/registry.pid, $RUN/cluster.json (for tools),
#   $STATE/nodes/<node>/containerd (containerd root; $STATE = PODMIGRATE_STATE_DIR, default /var/lib/podmigrate),
#   $STATE/registry (registry storage), PODMIGRATE_SHARE (default $STATE/share: shared checkpoint storage),
#   $LOG/<node>-containerd.log, $LOG/registry.log ($LOG = PODMIGRATE_LOG_DIR, default /var/log/podmigrate).
# With --share smb: $RUN/smb/ (smb.conf, Samba's state, smbd.pid, logs; scripts/lib/smb-share.sh owns it) serving
#   PODMIGRATE_SHARE, and $RUN/<node>/smb/ckpt: the node's mount of it, its agent's --share (cluster.json: nodes[].share).
# The control plane (when the CLI has the verbs): the in-process Kubernetes API server on https://127.0.0.1:6443 with
#   $RUN/kubeconfig (the admin, in system:masters: kubectl, tests, scripts), $RUN/apiserver.pid; a node emulator per
#   node playing the kubelet ($RUN/<node>/emulator.pid, publishing the node's agent as a mirror pod of the agent
#   DaemonSet); the controller ($RUN/controller.pid); mutual TLS between them from $STATE/certs (`podmigrate certs
#   generate`: CA, agents/<node>, clients/<name>).
#   The API server authenticates every component as its own identity (static tokens, $RUN/apiserver/tokens.csv, mode
#   0600) and authorizes with RBAC: the controller is system:serviceaccount:podmigrate-system:podmigrate-controller
#   under exactly deploy/20-rbac.yaml ($RUN/kubeconfigs/controller), each node emulator is system:node:<node> in
#   system:nodes under scripts/lib/node-emulator-rbac.yaml ($RUN/kubeconfigs/<node>). The agents never call the API.
# The eviction webhook (drain that live-migrates): the controller serves it on https://127.0.0.1:<--webhook-port, default
#   agent port base + 60> with $STATE/certs/webhook (issued by the instance's CA), and `up` installs the
#   ValidatingWebhookConfiguration podmigrate-eviction pointing there with that CA as caBundle (deploy/70-eviction-webhook.yaml
#   is the in-cluster form, through a Service), so the API server calls it on every pods/eviction.
#
# A second, independent instance (used by the lifecycle test) needs its own run/state dirs, node names, bridge
# names and subnets, and can borrow the first instance's registry:
#   PODMIGRATE_RUN_DIR=/run/pm-lc PODMIGRATE_STATE_DIR=/var/lib/pm-lc scripts/cluster.sh up \
#     --name-prefix lc- --bridge-prefix cni-lc- --subnet-base 10.89 --agent-port-base 7540 --apiserver-port 6543 \
#     --external-registry
#
# What `up` records so that `down` undoes exactly that: $RUN/cluster.env (the instance's settings),
# $RUN/host-changes (sysctl values it changed, iptables rules it inserted), the PID files.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${PODMIGRATE_RUN_DIR:-/run/podmigrate}
STATE=${PODMIGRATE_STATE_DIR:-/var/lib/podmigrate}
LOGDIR=${PODMIGRATE_LOG_DIR:-/var/log/podmigrate}
SHARE=${PODMIGRATE_SHARE:-$STATE/share}
CTRD_BIN=${PODMIGRATE_CONTAINERD_DIR:-/opt/podmigrate/containerd/usr/bin}
CTRD17_BIN=${PODMIGRATE_CONTAINERD17_DIR:-/opt/podmigrate/containerd-1.7/usr/bin}
# The runtime handler `podmigrate`'s binary (scripts/setup.sh publishes it there; test.sh publishes this tree's).
RUNTIME_BIN=${PODMIGRATE_RUNTIME:-/opt/podmigrate/runtime/podmigrate-runc}
DAEMON_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Where the registry answers. PODMIGRATE_REGISTRY_ADDR (with --external-registry only) borrows one elsewhere, e.g. a
# registry kept on 127.0.0.1:5001 for clusters that must not depend on the first instance's: images keep their
# $REGISTRY_HOST names, and the nodes' hosts.toml sends those pulls there.
REGISTRY_ADDR=${PODMIGRATE_REGISTRY_ADDR:-127.0.0.1:5000}
REGISTRY_HOST=localhost:5000
SANDBOX_IMAGE=$REGISTRY_HOST/podmigrate/pause:1
read -r -a CLI <<< "${PODMIGRATE_CLI:-podmigrate}"
# What the agents run: PODMIGRATE_AGENT_BIN, e.g. podmigrate-agent published NativeAOT from src/PodMigrate.Agent.Host as
# the DaemonSet's image runs it (README, The agent's memory; scripts/test.sh publishes and sets it), or by default the CLI
# (so that a cluster brought up by hand never runs a stale published agent); both are started as `<binary> agent …`.
# (Not PODMIGRATE_AGENT: the agent reads PODMIGRATE_AGENT__* as its options.)
read -r -a AGENT <<< "${PODMIGRATE_AGENT_BIN:-${PODMIGRATE_CLI:-podmigrate}}"
MAX_NODES=4
LETTERS=(a b c d)

NODES=2
NAME_PREFIX=node-
BRIDGE_PREFIX=cni-pm-
SUBNET_BASE=10.88
AGENT_PORT_BASE=7440
APISERVER_PORT=6443
EXTERNAL_REGISTRY=0
CONTAINERD_VERSIONS=2.1,1.7,2.1,2.1
PURGE=0
SHARE_KIND=local
SHARE_SIZE=
NODE_MEMORY=
OOM_GUARD=0
# The eviction webhook's port; empty: AGENT_PORT_BASE + 60 (see webhook_port).
WEBHOOK_PORT=

log() { printf '\033[1m[cluster]\033[0m %s\n' "$*" >&2; }
warn() { printf '[cluster] warning: %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) NODES=${2:?--nodes needs a number}; shift ;;
      --name-prefix) NAME_PREFIX=${2:?}; shift ;;
      --bridge-prefix) BRIDGE_PREFIX=${2:?}; shift ;;
      --subnet-base) SUBNET_BASE=${2:?}; shift ;;
      --agent-port-base) AGENT_PORT_BASE=${2:?}; shift ;;
      --apiserver-port) APISERVER_PORT=${2:?}; shift ;;
      --external-registry) EXTERNAL_REGISTRY=1 ;;
      --containerd) CONTAINERD_VERSIONS=${2:?--containerd needs a list like 2.1,1.7}; shift ;;
      --webhook-port) WEBHOOK_PORT=${2:?--webhook-port needs a port}; shift ;;
      --purge) PURGE=1 ;;
      --share) SHARE_KIND=${2:?--share needs local or smb}; shift ;;
      --share-size) SHARE_SIZE=${2:?--share-size needs a size like 512M}; shift ;;
      --node-memory) NODE_MEMORY=${2:?--node-memory needs a quantity like 1536Mi}; shift ;;
      --oom-guard) OOM_GUARD=1 ;;
      -h|--help) usage ;;
      *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
  done
  [[ $NODES =~ ^[1-9]$ ]] && [ "$NODES" -le $MAX_NODES ] || die "--nodes must be 1..$MAX_NODES, not '$NODES'"
  [[ $SUBNET_BASE =~ ^[0-9]+\.[0-9]+$ ]] || die "--subnet-base must look like 10.88, not '$SUBNET_BASE'"
  [[ $CONTAINERD_VERSIONS =~ ^(2\.1|1\.7)(,(2\.1|1\.7))*$ ]] || die "--containerd must list 2.1 or 1.7 per node, not '$CONTAINERD_VERSIONS'"
  [[ $SHARE_KIND =~ ^(local|smb)$ ]] || die "--share must be local or smb, not '$SHARE_KIND'"
  [ -z "$SHARE_SIZE" ] || [ "$SHARE_KIND" = smb ] || die "--share-size goes with --share smb"
  [ ${#BRIDGE_PREFIX} -le 14 ] || die "--bridge-prefix '$BRIDGE_PREFIX' is too long for a 15-character interface name"
  [ -z "$NODE_MEMORY" ] || [[ $NODE_MEMORY =~ ^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$ ]] || die "--node-memory must be a quantity like 1536Mi, not '$NODE_MEMORY'"
}

# ---- the instance's settings: written first by `up`, read back by `down` and `status` ----

save_settings() {
  mkdir -p "$RUN"
  cat > "$RUN/cluster.env.tmp" <<ENV
NODES=$NODES
NAME_PREFIX=$NAME_PREFIX
BRIDGE_PREFIX=$BRIDGE_PREFIX
SUBNET_BASE=$SUBNET_BASE
AGENT_PORT_BASE=$AGENT_PORT_BASE
APISERVER_PORT=$APISERVER_PORT
EXTERNAL_REGISTRY=$EXTERNAL_REGISTRY
CONTAINERD_VERSIONS=$CONTAINERD_VERSIONS
RUNTIME_BIN=$RUNTIME_BIN
WEBHOOK_PORT=$WEBHOOK_PORT
STATE=$STATE
LOGDIR=$LOGDIR
SHARE=$SHARE
SHARE_KIND=$SHARE_KIND
SHARE_SIZE=$SHARE_SIZE
NODE_MEMORY=$NODE_MEMORY
OOM_GUARD=$OOM_GUARD
ENV
  mv "$RUN/cluster.env.tmp" "$RUN/cluster.env"
}

load_settings() {
  local purge=$PURGE
  if [ -f "$RUN/cluster.env" ]; then
    # shellcheck disable=SC1091
    . "$RUN/cluster.env"
  fi
  PURGE=$purge
}

node_name() { echo "$NAME_PREFIX$1"; }
node_names() { local i; for ((i = 0; i < NODES; i++)); do node_name "${LETTERS[$i]}"; done; }
node_dir() { echo "$RUN/$1"; }
# Where the node's agent prepares checkpoints for the podmigrate runtime handler; the node's runtime must read the same
# (PODMIGRATE_PREPARED_DIR in its containerd's environment).
node_prepared() { echo "$RUN/$1/prepared"; }
# The agent's staging (tmpfs). Another instance's (PODMIGRATE_RUN_DIR) names its own, so that nodes of the same name in two
# instances never share it (`down` removes it).
node_staging() { if [ "$(basename "$RUN")" = podmigrate ]; then echo "/dev/shm/podmigrate-$1"; else echo "/dev/shm/$(basename "$RUN")-$1"; fi; }
# Whether the node's containerd has the podmigrate runtime handler (containerd 1.7 does not list handlers in CRI Status).
node_has_restore_runtime() { grep -q 'runtimes\.podmigrate\]' "$(node_dir "$1")/containerd.toml" 2>/dev/null; }
node_sock() { echo "$RUN/$1/containerd.sock"; }
# With --node-memory: the cgroup all the node's pods run under (capped by the emulator, sampled by the agent).
node_cgroup() { echo "/$(basename "$RUN")/$1"; }
node_memory_args() { [ -z "${NODE_MEMORY:-}" ] || echo "--node-memory $NODE_MEMORY --node-cgroup $(node_cgroup "$1")"; }
node_cgroup_args() { [ -z "${NODE_MEMORY:-}" ] || echo "--node-cgroup $(node_cgroup "$1")"; }
# The node cgroups (every controller's copy, deepest first) once their pods are gone; a busy one stays and is reported.
remove_node_cgroups() {
  local controller dir
  for controller in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    dir="$controller$(basename "$RUN")"
    [ -d "$dir" ] || continue
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || warn "cgroup $dir not removed (pods still in it?)"
  done
}
node_root() { echo "$STATE/nodes/$1/containerd"; }
# The containerd version of node index $1 (2.1 when the list is shorter), and its binaries.
node_version() { local v; IFS=, read -r -a v <<< "$CONTAINERD_VERSIONS"; echo "${v[$1]:-2.1}"; }
node_bin() { if [ "$(node_version "$1")" = 1.7 ]; then echo "$CTRD17_BIN"; else echo "$CTRD_BIN"; fi; }
node_index() { local i; for ((i = 0; i < MAX_NODES; i++)); do [ "$(node_name "${LETTERS[$i]}")" = "$1" ] && { echo "$i"; return; }; done; echo 0; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# ---- the share: one directory for all nodes, or (--share smb) Samba on loopback with one FUSE mount per node ----

SMB_STATE() { echo "$RUN/smb"; }
node_smb_mount() { echo "$RUN/$1/smb"; }
# The directory the node's agent uses as its share.
node_share() { if [ "$SHARE_KIND" = smb ]; then echo "$(node_smb_mount "$1")/ckpt"; else echo "$SHARE"; fi; }

start_smb_share() {
  [ "$SHARE_KIND" = smb ] || return 0
  local args=(--state "$(SMB_STATE)" --path "$SHARE") name
  [ -z "$SHARE_SIZE" ] || args+=(--size "$SHARE_SIZE")
  for name in $(node_names); do args+=("$name=$(node_smb_mount "$name")"); done
  "$REPO/scripts/lib/smb-share.sh" up "${args[@]}" >/dev/null
}

stop_smb_share() {
  [ -d "$(SMB_STATE)" ] || return 0
  "$REPO/scripts/lib/smb-share.sh" down --state "$(SMB_STATE)" || warn "could not take the SMB share down ($(SMB_STATE))"
}

# A PID file's process, only if it is still the process we started (its command line names $2).
recorded_pid() {
  local file=$1 marker=$2 pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  pid_alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  echo "$pid"
}

# SIGTERM, then SIGKILL after $2 seconds; waits until the process is gone.
stop_pid() {
  local pid=$1 grace=${2:-10} i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
  warn "pid $pid ignored SIGTERM for ${grace}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
  warn "pid $pid did not exit"
}

cli_available() { command -v "${CLI[0]}" >/dev/null 2>&1 && "${CLI[@]}" --help >/dev/null 2>&1; }

# `X --help` also succeeds for an unknown verb X (it prints the root help): look for X's own usage line.
cli_has_verb() { cli_available && "${CLI[@]}" "$@" --help 2>/dev/null | grep -q "^  podmigrate $* "; }

# ---- containerd per node ----

write_node_config() {
  local name=$1 index=$2 dir root subnet bridge
  dir=$(node_dir "$name"); root=$(node_root "$name")
  subnet="$SUBNET_BASE.$((index + 1)).0/24"; bridge="$BRIDGE_PREFIX${LETTERS[$index]}"
  mkdir -p "$dir/cni" "$dir/certs.d/$REGISTRY_HOST" "$dir/tmp" "$dir/containerd-state" "$root"
  # CRI PullImage (config_path) and the agent's base-image pulls (--registry-hosts-dir) read this: plain http for the
  # loopback registry (restore's internal pull needs no config).
  cat > "$dir/certs.d/$REGISTRY_HOST/hosts.toml" <<TOML
server = "http://$REGISTRY_HOST"

[host."http://$REGISTRY_ADDR"]
  capabilities = ["pull", "resolve"]
TOML
  cat > "$dir/cni/10-podmigrate.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "podmigrate-$name",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$dir/cni-ipam",
        "ranges": [[{"subnet": "$subnet"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
JSON
  mkdir -p "$(node_prepared "$name")"; chmod 0700 "$(node_prepared "$name")"
  # Prepared checkpoints are the CRIU images the node's runtime restores from: on tmpfs (as /run is on most hosts; here it
  # may be the root disk), so that neither the target's decompression nor the restore shares the disk the share is
  # written to. `down` unmounts it with everything under the node's directory.
  if [ "$(stat -f -c %T "$(node_prepared "$name")")" != tmpfs ]; then
    mount -t tmpfs -o mode=0700 "podmigrate-prepared-$name" "$(node_prepared "$name")"
  fi
  [ -x "$RUNTIME_BIN" ] || warn "$name: no $RUNTIME_BIN (scripts/setup.sh publishes it): pods of RuntimeClass podmigrate will not start"
  if [ "$(node_version "$index")" = 1.7 ]; then write_node_config_17 "$name" "$dir" "$root"; return; fi
  # See /work/shared/research/cri-notes.md for why each non-default setting is needed on these machines.
  cat > "$dir/containerd.toml" <<TOML
version = 3
root = "$root"
state = "$dir/containerd-state"
# A failed restore can leave a read-only mount in containerd's temp dir: keep it where \`down\` looks.
temp = "$dir/tmp"

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = "$dir/debug.sock"
  level = "info"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".registry]
      config_path = "$dir/certs.d"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "$SANDBOX_IMAGE"

  [plugins."io.containerd.cri.v1.runtime"]
    netns_mounts_under_state_dir = true
    # root here lacks CAP_SYS_RESOURCE: the sandbox's oom_score_adj -998 makes runc fail otherwise
    restrict_oom_score_adj = true
    enable_cdi = false
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          # runc's state per node, not the shared /run/containerd/runc default
          Root = "$dir/runc"
          SystemdCgroup = false
      # The clone pods' runtime (RuntimeClass podmigrate): runc, except a create that restores a prepared checkpoint.
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.podmigrate]
        runtime_type = "io.containerd.runc.v2"
        pod_annotations = ["podmigrate.io/*"]
        container_annotations = ["io.kubernetes.container.restartCount"]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.podmigrate.options]
          BinaryName = "$RUNTIME_BIN"
          Root = "$dir/runc"
          SystemdCgroup = false
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = "$dir/cni"
      max_conf_num = 1

  # NRI's socket path is shared between instances
  [plugins."io.containerd.nri.v1.nri"]
    disable = true

  [plugins."io.containerd.internal.v1.opt"]
    path = "$STATE/nodes/$name/opt"
TOML
}

# containerd 1.7 (config version 2: CRI is one plugin, "io.containerd.grpc.v1.cri"); the same settings as for 2.1.
write_node_config_17() {
  local name=$1 dir=$2 root=$3 cri='plugins."io.containerd.grpc.v1.cri"'
  cat > "$dir/containerd.toml" <<TOML
version = 2
root = "$root"
state = "$dir/containerd-state"
temp = "$dir/tmp"

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[debug]
  address = "$dir/debug.sock"
  level = "info"

[plugins]
  [$cri]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    sandbox_image = "$SANDBOX_IMAGE"
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true
    enable_cdi = false
    [$cri.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [$cri.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [$cri.containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "$dir/runc"
          SystemdCgroup = false
      [$cri.containerd.runtimes.podmigrate]
        runtime_type = "io.containerd.runc.v2"
        pod_annotations = ["podmigrate.io/*"]
        container_annotations = ["io.kubernetes.container.restartCount"]
        [$cri.containerd.runtimes.podmigrate.options]
          BinaryName = "$RUNTIME_BIN"
          Root = "$dir/runc"
          SystemdCgroup = false
    [$cri.cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$dir/cni"
      max_conf_num = 1
    [$cri.registry]
      config_path = "$dir/certs.d"

  [plugins."io.containerd.nri.v1.nri"]
    disable = true

  [plugins."io.containerd.internal.v1.opt"]
    path = "$STATE/nodes/$name/opt"
TOML
}

start_containerd() {
  local name=$1 dir sock pid i bin
  dir=$(node_dir "$name"); sock=$(node_sock "$name"); bin=$(node_bin "$(node_index "$name")")
  if pid=$(recorded_pid "$dir/containerd.pid" "$dir/containerd.toml"); then
    log "$name: containerd already running (pid $pid)"
    return 0
  fi
  mkdir -p "$LOGDIR"
  # Not under `ip netns exec` (it remounts /sys and runc then finds no cgroup mount); no systemd here.
  # PODMIGRATE_PREPARED_DIR reaches podmigrate-runc through the shim's environment.
  PATH=$bin:$DAEMON_PATH PODMIGRATE_PREPARED_DIR=$(node_prepared "$name") setsid "$bin/containerd" --config "$dir/containerd.toml" \
    >> "$LOGDIR/$name-containerd.log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$dir/containerd.pid"
  for ((i = 0; i < 200; i++)); do
    if [ -S "$sock" ] && "$bin/ctr" --address "$sock" version >/dev/null 2>&1; then
      log "$name: containerd $(node_version "$(node_index "$name")") up (pid $pid, $sock)"
      return 0
    fi
    pid_alive "$pid" || { tail -20 "$LOGDIR/$name-containerd.log" >&2; die "$name: containerd exited (log: $LOGDIR/$name-containerd.log)"; }
    sleep 0.1
  done
  die "$name: containerd did not answer on $sock within 20 s (log: $LOGDIR/$name-containerd.log)"
}

# Removes every pod of the node through CRI (so CNI releases IPs and veths, and shims exit), when the CLI can.
remove_pods_via_cri() {
  local name=$1 sock
  sock=$(node_sock "$name")
  [ -S "$sock" ] && cli_has_verb node rm-pod || return 0
  "${CLI[@]}" node rm-pod --socket "$sock" --all >/dev/null 2>&1 || warn "$name: removing pods through CRI failed; falling back to runc"
}

# Whatever CRI could not remove: runc containers under the node's runc root, shims serving the node's socket.
kill_node_leftovers() {
  local name=$1 dir sock ns id pid cg d pod_cgroups=() pod_logs=()
  dir=$(node_dir "$name"); sock=$(node_sock "$name")
  for ns in "$dir"/runc/*/; do
    [ -d "$ns" ] || continue
    for id in "$ns"*/; do
      [ -d "$id" ] || continue
      # runc removes the container's cgroup; the pod cgroup above it and the pod's log directory are kubelet's
      # to remove, so ours here.
      pod_cgroups+=($(jq -r '.cgroup_paths[]? | select(test("/kubepods/[^/]+/pod[^/]+/")) | sub("/[^/]+$"; "")' "$id/state.json" 2>/dev/null || true))
      pod_logs+=($(jq -r '.config.labels[]? | select(startswith("io.kubernetes.cri.sandbox-log-directory=/var/log/pods/")) | sub("^[^=]*="; "")' "$id/state.json" 2>/dev/null || true))
      id=$(basename "$id")
      runc --root "${ns%/}" kill -a "$id" KILL >/dev/null 2>&1 || true
      runc --root "${ns%/}" delete -f "$id" >/dev/null 2>&1 || true
    done
  done
  for cg in $(printf '%s\n' "${pod_cgroups[@]}" | sort -u); do rmdir "$cg" 2>/dev/null || true; done
  for d in "${pod_logs[@]}"; do [[ $d == /var/log/pods/*_*_* && $d != *..* ]] && rm -rf "$d"; done
  # Shims outlive containerd by design; ours are the ones whose -address is this node's socket.
  for pid in $(node_shim_pids "$sock"); do stop_pid "$pid" 5; done
}

node_shim_pids() {
  local sock=$1 p
  for p in /proc/[0-9]*; do
    [ -r "$p/cmdline" ] || continue
    if tr '\0' '\n' < "$p/cmdline" 2>/dev/null | head -1 | grep -q 'containerd-shim' \
      && tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -qF -- "-address $sock "; then
      basename "$p"
    fi
  done
}

# Mount points under the given prefixes, deepest first (field 5 of mountinfo; octal escapes kept).
mounts_under() {
  local prefix
  for prefix in "$@"; do
    awk -v p="$prefix/" '{ if (index($5, p) == 1) print $5 }' /proc/self/mountinfo
  done | sort -r -u
}

unmount_under() {
  local m
  for m in $(mounts_under "$@"); do
    m=$(printf '%b' "${m//\\/\\0}")
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "could not unmount $m"
  done
}

stop_node() {
  local name=$1 dir pid
  dir=$(node_dir "$name")
  remove_pods_via_cri "$name"
  if pid=$(recorded_pid "$dir/containerd.pid" "$dir/containerd.toml"); then
    log "$name: stopping containerd (pid $pid)"
    stop_pid "$pid" 15
  fi
  kill_node_leftovers "$name"
  unmount_under "$dir" "$STATE/nodes/$name"
  rm -f "$dir/containerd.pid"
}

# ---- agents: started only when the CLI has the `agent` verb ----

# The agent's metrics (Prometheus, HTTP/1.1) are on port AGENT_PORT_BASE+1000+i (clear of a second instance's agent ports).
start_agent() {
  local name=$1 index=$2 dir pid
  dir=$(node_dir "$name")
  if pid=$(recorded_pid "$dir/agent.pid" "agent"); then
    log "$name: agent already running (pid $pid)"
    return 0
  fi
  if [ -z "${PODMIGRATE_AGENT_BIN:-}" ] && ! cli_has_verb agent; then
    log "$name: no \`${CLI[*]} agent\` verb yet: agent not started"
    return 0
  fi
  mkdir -p "$STATE/nodes/$name/agent"
  local tls=() restore=()
  if [ -f "$CERTS/agents/$name/tls.crt" ]; then tls=(--tls-dir "$CERTS/agents/$name"); fi
  if node_has_restore_runtime "$name"; then restore=(--restore-runtime); fi
  # MALLOC_ARENA_MAX=2 as in deploy/50-agent-daemonset.yaml (README, The agent's memory).
  PODMIGRATE_PREPARED_DIR=$(node_prepared "$name") MALLOC_ARENA_MAX=2 setsid "${AGENT[@]}" agent --node "$name" --containerd-socket "$(node_sock "$name")" --socket "$dir/agent.sock" \
    --port $((AGENT_PORT_BASE + index)) --metrics-port $((AGENT_PORT_BASE + 1000 + index)) --listen 127.0.0.1 \
    --share "$(node_share "$name")" --state-dir "$STATE/nodes/$name/agent" --staging-dir "$(node_staging "$name")" \
    --prepared-dir "$(node_prepared "$name")" --registry-hosts-dir "$dir/certs.d" $(node_cgroup_args "$name") "${restore[@]}" "${tls[@]}" >> "$LOGDIR/$name-agent.log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$dir/agent.pid"
  log "$name: agent started (pid $pid, ${AGENT[0]}, $dir/agent.sock, port $((AGENT_PORT_BASE + index)))"
}

# Until every started agent serves on its socket: `up` returns a cluster that can be used at once.
wait_for_agents() {
  local i name dir pid deadline=$((SECONDS + 60))
  for ((i = 0; i < NODES; i++)); do
    name=$(node_name "${LETTERS[$i]}"); dir=$(node_dir "$name")
    pid=$(recorded_pid "$dir/agent.pid" "agent") || continue
    until [ -S "$dir/agent.sock" ]; do
      pid_alive "$pid" || { tail -20 "$LOGDIR/$name-agent.log" >&2; die "$name: the agent (pid $pid) exited; log: $LOGDIR/$name-agent.log"; }
      [ $SECONDS -lt $deadline ] || die "$name: the agent (pid $pid) is not serving on $dir/agent.sock after 60 s; log: $LOGDIR/$name-agent.log"
      sleep 0.2
    done
  done
}

stop_agent() {
  local name=$1 dir pid
  dir=$(node_dir "$name")
  if pid=$(recorded_pid "$dir/agent.pid" "agent"); then
    log "$name: stopping agent (pid $pid)"
    stop_pid "$pid" 10
  fi
  rm -f "$dir/agent.pid" "$dir/agent.sock"
  rm -rf "$(node_staging "$name")"
}

# ---- control plane: API server, node emulators (the kubelet's part), controller; started when the CLI has the verbs ----

CERTS=$STATE/certs
KUBECONFIG_PATH=$RUN/kubeconfig
KUBECONFIGS=$RUN/kubeconfigs
API_TOKENS=$RUN/apiserver/tokens.csv
CONTROLLER_NAMESPACE=podmigrate-system
CONTROLLER_CLIENT=podmigrate-controller
CONTROLLER_USER=system:serviceaccount:$CONTROLLER_NAMESPACE:podmigrate-controller

kube() { kubectl --kubeconfig "$KUBECONFIG_PATH" "$@"; }

new_token() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }

# The identities of this instance, as a kube-apiserver --token-auth-file (token,user,uid,"groups"): the admin in
# system:masters, the controller's service account, one kubelet identity per node. Made once per `up` of the instance.
write_api_tokens() {
  local name
  [ -s "$API_TOKENS" ] && return 0
  mkdir -p "$(dirname "$API_TOKENS")"
  (
    umask 077
    {
      echo "$(new_token),admin,admin,system:masters"
      echo "$(new_token),$CONTROLLER_USER,$(cat /proc/sys/kernel/random/uuid),\"system:serviceaccounts,system:serviceaccounts:$CONTROLLER_NAMESPACE\""
      for name in $(node_names); do echo "$(new_token),system:node:$name,$name,system:nodes"; done
    } > "$API_TOKENS.tmp"
  )
  mv "$API_TOKENS.tmp" "$API_TOKENS"
}

# $KUBECONFIGS/<file>: the admin's kubeconfig (server, CA) with the token of <user> from the token file, mode 0600.
write_identity_kubeconfig() {
  local file=$1 user=$2 token entry
  token=$(awk -F, -v user="$user" '$2 == user { print $1; exit }' "$API_TOKENS")
  [ -n "$token" ] || die "no token for $user in $API_TOKENS"
  mkdir -p "$KUBECONFIGS"
  (umask 077; cp "$KUBECONFIG_PATH" "$KUBECONFIGS/.$file.tmp")
  entry=$(kubectl --kubeconfig "$KUBECONFIGS/.$file.tmp" config view -o jsonpath='{.contexts[0].context.user}')
  kubectl --kubeconfig "$KUBECONFIGS/.$file.tmp" config set-credentials "$entry" --token="$token" >/dev/null
  mv "$KUBECONFIGS/.$file.tmp" "$KUBECONFIGS/$file"
}

# One CA for the instance (kept across `up`s); a server certificate per agent (its node name, localhost, 127.0.0.1)
# and the controller's client certificate. Issued again at every `up`: an agent's certificate also signs the
# checkpoints it makes (code-signing usage), and agents restore only checkpoints signed under ca.crt, so certificates
# left by an older CLI (without that usage) are replaced rather than reused.
issue_certificates() {
  cli_has_verb certs generate || return 0
  local args=() name
  for name in $(node_names); do args+=(--node "$name"); done
  # The eviction webhook's server certificate (no code signing), when the CLI can issue one.
  if "${CLI[@]}" certs generate --help 2>/dev/null | grep -q -- --webhook-service; then args+=(--webhook-service "$WEBHOOK_SERVICE"); fi
  "${CLI[@]}" certs generate --out "$CERTS" --controller-name "$CONTROLLER_CLIENT" "${args[@]}" >/dev/null
}

start_apiserver() {
  local pid name
  if pid=$(recorded_pid "$RUN/apiserver.pid" "apiserver"); then
    log "API server already running (pid $pid)"
    return 0
  fi
  cli_has_verb apiserver || { log "no \`${CLI[*]} apiserver\` verb: no control plane"; return 0; }
  rm -f "$KUBECONFIG_PATH"
  rm -rf "$KUBECONFIGS"
  write_api_tokens
  setsid "${CLI[@]}" apiserver --port "$APISERVER_PORT" --kubeconfig-out "$KUBECONFIG_PATH" --tls \
    --token-auth-file "$API_TOKENS" --authorization-mode RBAC \
    >> "$LOGDIR/apiserver.log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$RUN/apiserver.pid"
  local deadline=$((SECONDS + 60))
  until [ -f "$KUBECONFIG_PATH" ] && kube get --raw /readyz >/dev/null 2>&1; do
    pid_alive "$pid" || { tail -20 "$LOGDIR/apiserver.log" >&2; die "the API server (pid $pid) exited; log: $LOGDIR/apiserver.log"; }
    [ $SECONDS -lt $deadline ] || die "the API server is not ready after 60 s; log: $LOGDIR/apiserver.log"
    sleep 0.2
  done
  log "API server started (pid $pid, https://127.0.0.1:$APISERVER_PORT, RBAC; admin kubeconfig $KUBECONFIG_PATH)"
  # What a cluster admin installs: the namespace, the PodMigration CRD and the RBAC from deploy/ (the controller runs
  # under exactly that), the controller's client certificate for the agents as the Secret the controller reads; and what
  # a real cluster has on its own: the kubelets' permissions (here the node emulators').
  kube apply -f "$REPO/deploy/00-namespace.yaml" -f "$REPO/deploy/10-podmigration-crd.yaml" -f "$REPO/deploy/20-rbac.yaml" \
    -f "$REPO/scripts/lib/node-emulator-rbac.yaml" >/dev/null
  write_identity_kubeconfig controller "$CONTROLLER_USER"
  for name in $(node_names); do write_identity_kubeconfig "$name" "system:node:$name"; done
  if [ -f "$CERTS/clients/$CONTROLLER_CLIENT/tls.crt" ]; then
    kube -n "$CONTROLLER_NAMESPACE" create secret generic podmigrate-controller-tls --type=kubernetes.io/tls \
      --from-file="$CERTS/clients/$CONTROLLER_CLIENT" --dry-run=client -o yaml | kube apply -f - >/dev/null
  fi
}

start_emulator() {
  local name=$1 index=$2 dir pid
  dir=$(node_dir "$name")
  [ -f "$KUBECONFIG_PATH" ] || return 0
  if pid=$(recorded_pid "$dir/emulator.pid" "emulate"); then
    log "$name: node emulator already running (pid $pid)"
    return 0
  fi
  cli_has_verb node emulate || return 0
  setsid "${CLI[@]}" node emulate --node "$name" --kubeconfig "$KUBECONFIGS/$name" --cri-socket "$(node_sock "$name")" \
    --agent-port $((AGENT_PORT_BASE + index)) --address 127.0.0.1 $(node_memory_args "$name") >> "$LOGDIR/$name-emulator.log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$dir/emulator.pid"
  log "$name: node emulator started (pid $pid)"
}

start_controller() {
  local pid tls=()
  [ -f "$KUBECONFIG_PATH" ] || return 0
  if pid=$(recorded_pid "$RUN/controller.pid" "controller"); then
    log "controller already running (pid $pid)"
    return 0
  fi
  cli_has_verb controller || return 0
  [ -f "$CERTS/clients/$CONTROLLER_CLIENT/tls.crt" ] || tls=(--agent-insecure)
  if [ -f "$CERTS/webhook/tls.crt" ]; then
    tls+=(--webhook-port "$(webhook_port)" --webhook-tls-dir "$CERTS/webhook" --webhook-listen 127.0.0.1)
  fi
  setsid "${CLI[@]}" controller --kubeconfig "$KUBECONFIGS/controller" --namespace "$CONTROLLER_NAMESPACE" \
    --identity "local-controller" "${tls[@]}" $([ "${OOM_GUARD:-0}" = 1 ] && echo --oom-guard) >> "$LOGDIR/controller.log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$RUN/controller.pid"
  log "controller started (pid $pid)"
}

# Until every node is Ready in the API server with its agent's mirror pod Ready: `up` returns a usable cluster.
wait_for_control_plane() {
  [ -f "$KUBECONFIG_PATH" ] || return 0
  local name deadline=$((SECONDS + 90))
  for name in $(node_names); do
    until kube get node "$name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True \
       && kube -n "$CONTROLLER_NAMESPACE" get pod "podmigrate-agent-$name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; do
      [ $SECONDS -lt $deadline ] || die "$name: not Ready in the API server with a Ready agent after 90 s; log: $LOGDIR/$name-emulator.log"
      sleep 0.3
    done
  done
}

start_control_plane() {
  local i
  start_apiserver
  for ((i = 0; i < NODES; i++)); do start_emulator "$(node_name "${LETTERS[$i]}")" "$i"; done
  start_controller
  install_eviction_webhook
  wait_for_control_plane
}

# ---- the eviction webhook: the controller serves it, the API server calls it (drain that live-migrates) ----

WEBHOOK_SERVICE=podmigrate-webhook.podmigrate-system
WEBHOOK_PATH=/validate/pods-eviction
webhook_port() { echo "${WEBHOOK_PORT:-$((AGENT_PORT_BASE + 60))}"; }

# What deploy/70-eviction-webhook.yaml installs in a cluster, with the controller reached by URL instead of a Service
# (this API server routes no Services) and the instance's CA as caBundle. Only once the controller answers on the port:
# the policy is Fail, so an installed webhook that nobody serves would refuse every eviction.
install_eviction_webhook() {
  [ -f "$KUBECONFIG_PATH" ] && [ -f "$CERTS/webhook/tls.crt" ] && recorded_pid "$RUN/controller.pid" "controller" >/dev/null || return 0
  local port deadline=$((SECONDS + 60))
  port=$(webhook_port)
  until curl -fs -o /dev/null --max-time 2 --cacert "$CERTS/ca.crt" "https://127.0.0.1:$port/healthz"; do
    [ $SECONDS -lt $deadline ] || die "the controller does not serve the eviction webhook on https://127.0.0.1:$port after 60 s; log: $LOGDIR/controller.log"
    sleep 0.3
  done
  kube apply -f - >/dev/null <<YAML
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: podmigrate-eviction
webhooks:
  - name: eviction.podmigrate.io
    admissionReviewVersions: [v1]
    clientConfig:
      url: https://127.0.0.1:$port$WEBHOOK_PATH
      caBundle: $(base64 -w0 "$CERTS/ca.crt")
    rules:
      - operations: [CREATE]
        apiGroups: [""]
        apiVersions: [v1]
        resources: [pods/eviction]
        scope: Namespaced
    failurePolicy: Fail
    namespaceSelector:
      matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values: [kube-system, podmigrate-system]
    sideEffects: NoneOnDryRun
    timeoutSeconds: 5
YAML
  log "eviction webhook installed (https://127.0.0.1:$port$WEBHOOK_PATH, caBundle $CERTS/ca.crt)"
}

stop_control_plane() {
  local pid i name
  if pid=$(recorded_pid "$RUN/controller.pid" "controller"); then log "stopping controller (pid $pid)"; stop_pid "$pid" 10; fi
  for ((i = 0; i < MAX_NODES; i++)); do
    name=$(node_name "${LETTERS[$i]}")
    if pid=$(recorded_pid "$(node_dir "$name")/emulator.pid" "emulate"); then log "$name: stopping node emulator (pid $pid)"; stop_pid "$pid" 10; fi
  done
  if pid=$(recorded_pid "$RUN/apiserver.pid" "apiserver"); then log "stopping API server (pid $pid)"; stop_pid "$pid" 10; fi
  rm -f "$RUN/controller.pid" "$RUN/apiserver.pid" "$KUBECONFIG_PATH" "$API_TOKENS"
  rm -rf "$KUBECONFIGS"
}

# ---- registry ----

registry_healthy() { curl -fs -o /dev/null --max-time 2 "http://$REGISTRY_ADDR/v2/"; }

start_registry() {
  local pid i
  [ "$EXTERNAL_REGISTRY" = 1 ] || [ "$REGISTRY_ADDR" = 127.0.0.1:5000 ] \
    || die "PODMIGRATE_REGISTRY_ADDR=$REGISTRY_ADDR needs --external-registry (this script pushes to $REGISTRY_HOST)"
  if [ "$EXTERNAL_REGISTRY" = 1 ]; then
    registry_healthy || die "--external-registry: nothing answers on http://$REGISTRY_ADDR/v2/"
    return 0
  fi
  if pid=$(recorded_pid "$RUN/registry.pid" "$RUN/registry.yml"); then
    log "registry already running (pid $pid)"
    return 0
  fi
  registry_healthy && die "something else already serves $REGISTRY_ADDR (not started by this script)"
  mkdir -p "$STATE/registry" "$LOGDIR"
  cat > "$RUN/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YML
  setsid /usr/bin/docker-registry serve "$RUN/registry.yml" >> "$LOGDIR/registry.log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$RUN/registry.pid"
  for ((i = 0; i < 100; i++)); do
    registry_healthy && { log "registry up (pid $pid, http://$REGISTRY_ADDR)"; return 0; }
    pid_alive "$pid" || { tail -20 "$LOGDIR/registry.log" >&2; die "registry exited (log: $LOGDIR/registry.log)"; }
    sleep 0.1
  done
  die "registry did not answer on $REGISTRY_ADDR within 10 s"
}

stop_registry() {
  local pid
  if pid=$(recorded_pid "$RUN/registry.pid" "$RUN/registry.yml"); then
    log "stopping registry (pid $pid)"
    stop_pid "$pid" 10
  fi
  rm -f "$RUN/registry.pid" "$RUN/registry.yml"
}

push_workload_images() {
  [ "$EXTERNAL_REGISTRY" = 1 ] && return 0
  if ! cli_has_verb image build-workloads; then
    warn "\`${CLI[*]} image build-workloads\` is not available (set PODMIGRATE_CLI): workload images not built; pods cannot start until $SANDBOX_IMAGE is pushed"
    return 0
  fi
  log "building and pushing workload images to $REGISTRY_HOST"
  "${CLI[@]}" image build-workloads --registry "$REGISTRY_HOST" >&2 \
    || die "\`${CLI[*]} image build-workloads --registry $REGISTRY_HOST\` failed"
}

# ---- host network: bridges come from CNI; forwarding between them is ours to enable and undo ----

HOST_CHANGES() { echo "$RUN/host-changes"; }

fw_rule() { echo "FORWARD -i $BRIDGE_PREFIX+ -o $BRIDGE_PREFIX+ -m comment --comment podmigrate:$RUN -j ACCEPT"; }

setup_host_network() {
  local changes rule old
  changes=$(HOST_CHANGES)
  touch "$changes"
  old=$(sysctl -n net.ipv4.ip_forward)
  if [ "$old" != 1 ]; then
    grep -q '^sysctl net.ipv4.ip_forward=' "$changes" || echo "sysctl net.ipv4.ip_forward=$old" >> "$changes"
    sysctl -qw net.ipv4.ip_forward=1
  fi
  rule=$(fw_rule)
  # shellcheck disable=SC2086
  if ! iptables -C $rule 2>/dev/null; then
    iptables -I $rule
    echo "iptables $rule" >> "$changes"
  fi
}

restore_host_network() {
  local changes line
  changes=$(HOST_CHANGES)
  [ -f "$changes" ] || return 0
  while read -r line; do
    case $line in
      "sysctl "*) sysctl -qw "${line#sysctl }" || warn "could not restore ${line#sysctl }" ;;
      # shellcheck disable=SC2086
      "iptables "*) while iptables -D ${line#iptables } 2>/dev/null; do :; done ;;
    esac
  done < "$changes"
  rm -f "$changes"
}

remove_bridges() {
  local i bridge
  for ((i = 0; i < MAX_NODES; i++)); do
    bridge="$BRIDGE_PREFIX${LETTERS[$i]}"
    if ip link show "$bridge" >/dev/null 2>&1; then
      ip link delete "$bridge" type bridge || warn "could not delete bridge $bridge"
    fi
  done
}

# ---- cluster.json: what tools read ----

write_cluster_json() {
  local i name entries=()
  for ((i = 0; i < NODES; i++)); do
    name=$(node_name "${LETTERS[$i]}")
    entries+=("$(jq -n --arg name "$name" --arg sock "$(node_sock "$name")" --arg subnet "$SUBNET_BASE.$((i + 1)).0/24" \
      --arg gateway "$SUBNET_BASE.$((i + 1)).1" --arg bridge "$BRIDGE_PREFIX${LETTERS[$i]}" \
      --arg agentSocket "$(node_dir "$name")/agent.sock" --argjson agentPort $((AGENT_PORT_BASE + i)) \
      --arg root "$(node_root "$name")" --arg log "$LOGDIR/$name-containerd.log" \
      --arg version "$(node_version "$i")" --arg prepared "$(node_prepared "$name")" --arg staging "$(node_staging "$name")" \
      --argjson restoreRuntime "$(node_has_restore_runtime "$name" && echo true || echo false)" \
      --arg share "$(node_share "$name")" \
      '{name: $name, containerdSocket: $sock, containerdRoot: $root, containerdLog: $log, containerdVersion: $version,
        preparedDir: $prepared, stagingDir: $staging, restoreRuntime: $restoreRuntime, share: $share, subnet: $subnet,
        gateway: $gateway, bridge: $bridge, agentSocket: $agentSocket, agentPort: $agentPort}')")
  done
  printf '%s\n' "${entries[@]}" | jq -s --arg run "$RUN" --arg registry "$REGISTRY_HOST" --arg share "$SHARE" \
    --arg sandbox "$SANDBOX_IMAGE" --arg kubeconfig "$RUN/kubeconfig" --arg runtime "$RUNTIME_BIN" \
    --arg shareKind "$SHARE_KIND" --arg smbState "$([ "$SHARE_KIND" = smb ] && SMB_STATE || true)" \
    '{runDir: $run, registry: $registry, sandboxImage: $sandbox, share: $share, shareKind: $shareKind, smbState: $smbState, kubeconfig: $kubeconfig,
      runtimeBinary: $runtime, runtimeHandler: "podmigrate", nodes: .}' \
    > "$RUN/cluster.json.tmp"
  mv "$RUN/cluster.json.tmp" "$RUN/cluster.json"
}

# ---- verbs ----

node_healthy() {
  local name=$1 dir
  dir=$(node_dir "$name")
  recorded_pid "$dir/containerd.pid" "$dir/containerd.toml" >/dev/null \
    && "$CTRD_BIN/ctr" --address "$(node_sock "$name")" version >/dev/null 2>&1
}

cluster_healthy() {
  local name
  [ -f "$RUN/cluster.json" ] || return 1
  for name in $(node_names); do node_healthy "$name" || return 1; done
  registry_healthy
}

has_leftovers() {
  [ -e "$RUN" ] || [ -n "$(mounts_under "$RUN" "$STATE/nodes")" ]
}

cmd_up() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  [ -x "$CTRD_BIN/containerd" ] || die "no containerd in $CTRD_BIN: run scripts/setup.sh"
  [[ $CONTAINERD_VERSIONS != *1.7* ]] || [ -x "$CTRD17_BIN/containerd" ] || die "no containerd 1.7 in $CTRD17_BIN: run scripts/setup.sh"
  local requested_nodes=$NODES i name
  if [ -f "$RUN/cluster.env" ]; then
    local wanted=("$NODES" "$NAME_PREFIX" "$BRIDGE_PREFIX" "$SUBNET_BASE" "$AGENT_PORT_BASE" "$EXTERNAL_REGISTRY" "$APISERVER_PORT" "$CONTAINERD_VERSIONS" "$RUNTIME_BIN" "$NODE_MEMORY" "$OOM_GUARD" "$SHARE_KIND" "$SHARE_SIZE" "$WEBHOOK_PORT")
    load_settings
    if [ "$NODES" = "$requested_nodes" ] && [ "$CONTAINERD_VERSIONS" = "${wanted[7]}" ] \
       && [ "${NODE_MEMORY:-}" = "${wanted[9]}" ] && [ "${OOM_GUARD:-0}" = "${wanted[10]}" ] \
       && [ "$SHARE_KIND" = "${wanted[11]}" ] && [ "$SHARE_SIZE" = "${wanted[12]}" ] && cluster_healthy; then
      log "already up ($NODES nodes): making sure images, the share, agents and the control plane are there"
      start_smb_share
      push_workload_images
      issue_certificates
      for ((i = 0; i < NODES; i++)); do start_agent "$(node_name "${LETTERS[$i]}")" "$i"; done
      wait_for_agents
      start_control_plane
      cmd_status
      return
    fi
    log "stale or different instance in $RUN: cleaning it up first"
    cmd_down
    NODES=${wanted[0]} NAME_PREFIX=${wanted[1]} BRIDGE_PREFIX=${wanted[2]} SUBNET_BASE=${wanted[3]}
    AGENT_PORT_BASE=${wanted[4]} EXTERNAL_REGISTRY=${wanted[5]} APISERVER_PORT=${wanted[6]}
    CONTAINERD_VERSIONS=${wanted[7]} RUNTIME_BIN=${wanted[8]}
    NODE_MEMORY=${wanted[9]} OOM_GUARD=${wanted[10]} SHARE_KIND=${wanted[11]} SHARE_SIZE=${wanted[12]} WEBHOOK_PORT=${wanted[13]}
  elif has_leftovers; then
    log "leftovers in $RUN without a record: cleaning up with this invocation's settings"
    cmd_down leftovers
  fi

  save_settings
  mkdir -p "$STATE" "$LOGDIR" "$SHARE"
  chmod 0700 "$SHARE"
  setup_host_network
  start_registry
  for ((i = 0; i < NODES; i++)); do
    name=$(node_name "${LETTERS[$i]}")
    write_node_config "$name" "$i"
    start_containerd "$name"
  done
  push_workload_images
  issue_certificates
  start_smb_share
  for ((i = 0; i < NODES; i++)); do start_agent "$(node_name "${LETTERS[$i]}")" "$i"; done
  wait_for_agents
  write_cluster_json
  start_control_plane
  log "up: $NODES nodes; cluster description in $RUN/cluster.json"
}

# `down` acts on what `up` recorded in $RUN/cluster.env; without a record it only purges (if asked), so that a
# stray `down` cannot take the default bridges of another instance. `up` calls it with "leftovers" to clean a
# crashed, unrecorded instance with the invocation's own settings.
cmd_down() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  local name i
  if [ -f "$RUN/cluster.env" ]; then
    load_settings
  elif [ "${1:-}" != leftovers ]; then
    log "nothing recorded in $RUN: not up"
    if [ "$PURGE" = 1 ]; then rm -rf "$STATE/registry" "$SHARE"; fi
    return 0
  fi
  stop_control_plane
  for ((i = 0; i < MAX_NODES; i++)); do
    name=$(node_name "${LETTERS[$i]}")
    [ -d "$(node_dir "$name")" ] || [ -n "$(mounts_under "$(node_dir "$name")" "$STATE/nodes/$name")" ] || continue
    stop_agent "$name"
  done
  # After the agents (their share goes away), before the nodes' directories are unmounted wholesale.
  stop_smb_share
  for ((i = 0; i < MAX_NODES; i++)); do
    name=$(node_name "${LETTERS[$i]}")
    [ -d "$(node_dir "$name")" ] || [ -n "$(mounts_under "$(node_dir "$name")" "$STATE/nodes/$name")" ] || continue
    stop_node "$name"
  done
  [ "$EXTERNAL_REGISTRY" = 1 ] || stop_registry
  remove_bridges
  restore_host_network
  unmount_under "$RUN" "$STATE/nodes"
  remove_node_cgroups
  rm -rf "$RUN"
  # The nodes' containerd roots hold only what these nodes pulled and ran; they go with the instance.
  rm -rf "$STATE/nodes"
  if [ "$PURGE" = 1 ]; then
    log "purging $STATE/registry and $SHARE"
    rm -rf "$STATE/registry" "$SHARE" "$STATE/certs"
  fi
  local left
  left=$(mounts_under "$RUN" "$STATE")
  [ -z "$left" ] || warn "mounts left behind: $left"
  log "down"
}

cmd_status() {
  local ok=0 i name dir sock pid pods
  if [ ! -f "$RUN/cluster.env" ]; then
    echo "cluster: down (no $RUN/cluster.env)"
    return 3
  fi
  load_settings
  echo "cluster: $NODES nodes, run dir $RUN"
  for ((i = 0; i < NODES; i++)); do
    name=$(node_name "${LETTERS[$i]}"); dir=$(node_dir "$name"); sock=$(node_sock "$name")
    pid=$(recorded_pid "$dir/containerd.pid" "$dir/containerd.toml" || echo "-")
    pods="?"
    if [ "$pid" = - ]; then
      echo "  $name: DOWN (containerd not running)"; ok=1; continue
    fi
    if cli_has_verb node info; then
      if ! "${CLI[@]}" node info --socket "$sock" >/dev/null 2>&1; then
        echo "  $name: UNHEALTHY (pid $pid, CRI not answering on $sock)"; ok=1; continue
      fi
      pods=$("${CLI[@]}" node pods --socket "$sock" -o json 2>/dev/null | jq 'length' 2>/dev/null || echo "?")
    elif ! "$CTRD_BIN/ctr" --address "$sock" version >/dev/null 2>&1; then
      echo "  $name: UNHEALTHY (pid $pid, containerd not answering on $sock)"; ok=1; continue
    fi
    local agent="not running"
    if pid_agent=$(recorded_pid "$dir/agent.pid" "agent"); then agent="pid $pid_agent, $dir/agent.sock, port $((AGENT_PORT_BASE + i))"; fi
    echo "  $name: healthy (containerd pid $pid, $sock, subnet $SUBNET_BASE.$((i + 1)).0/24, bridge $BRIDGE_PREFIX${LETTERS[$i]}, pods $pods; agent: $agent)"
  done
  if registry_healthy; then
    echo "  registry: healthy (http://$REGISTRY_ADDR$([ "$EXTERNAL_REGISTRY" = 1 ] && echo ', external'))"
  else
    echo "  registry: DOWN (http://$REGISTRY_ADDR)"; ok=1
  fi
  if [ -d "$SHARE" ]; then echo "  share: $SHARE ($SHARE_KIND)"; else echo "  share: MISSING ($SHARE)"; ok=1; fi
  if [ "$SHARE_KIND" = smb ]; then
    "$REPO/scripts/lib/smb-share.sh" status --state "$(SMB_STATE)" | sed 's/^/  smb /' || ok=1
  fi
  if [ -f "$RUN/apiserver.pid" ]; then
    if pid=$(recorded_pid "$RUN/apiserver.pid" "apiserver") && kube get --raw /readyz >/dev/null 2>&1; then
      echo "  API server: healthy (pid $pid, kubeconfig $KUBECONFIG_PATH)"
    else
      echo "  API server: DOWN"; ok=1
    fi
    for ((i = 0; i < NODES; i++)); do
      name=$(node_name "${LETTERS[$i]}")
      if pid=$(recorded_pid "$(node_dir "$name")/emulator.pid" "emulate"); then echo "  $name emulator: running (pid $pid)"; else echo "  $name emulator: DOWN"; ok=1; fi
    done
    if pid=$(recorded_pid "$RUN/controller.pid" "controller"); then echo "  controller: running (pid $pid)"; else echo "  controller: DOWN"; ok=1; fi
  fi
  return $ok
}

# One verb at a time per instance: test assemblies running in parallel may all ask for `up`.
# (Daemons are started with 9>&- so that they do not hold the lock.)
take_lock() {
  mkdir -p "$(dirname "$RUN")"
  exec 9> "${RUN%/}.lock"
  flock -w 600 9 || die "another cluster.sh holds ${RUN%/}.lock"
}

main() {
  local verb=${1:-}
  [ $# -gt 0 ] && shift
  parse_args "$@"
  case $verb in up|down) take_lock ;; esac
  case $verb in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) usage ;;
  esac
}

main "$@"
