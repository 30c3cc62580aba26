#!/usr/bin/env bash
# One SMB share on loopback, mounted per node: Samba (smbd) serves a directory, and each node gets its own smbnetfs
# FUSE mount of it (this kernel has no cifs client). Everything lives under a state directory of its own: smb.conf,
# Samba's databases, the per-node smbnetfs homes, PID files, logs. /etc/samba and /etc/passwd are not touched.
# (Setup and every measured quirk: ../shared/research/smb-share.md; the README's "SMB and NFS shares".)
#
#   smb-share.sh up    --state DIR --path DIR [--size 512M] [--port N] NODE=MOUNTPOINT...
#        serve DIR (a tmpfs of --size mounted on it when given: a share that can fill up) on 127.0.0.1:N (a free port
#        from 4450 up when not given) and mount it for each NODE at MOUNTPOINT; the share is then MOUNTPOINT/ckpt.
#        Idempotent: what is already running is kept.
#   smb-share.sh down  --state DIR          unmount every node, stop smbd, unmount the tmpfs; the state dir goes
#   smb-share.sh stop-server  --state DIR   stop only smbd (the mounts stay: the clients then fail with EIO)
#   smb-share.sh start-server --state DIR   start smbd again with the recorded settings
#   smb-share.sh status --state DIR         exit 0 when smbd answers and every mount is up
# `up` prints the settings as KEY=VALUE lines (PORT, SERVER_PATH, and one MOUNT_<node>=<share path> per node).
set -euo pipefail

SHARE_NAME=ckpt
PASSWORD=podmigrate
# ms until a stalled server becomes EIO at the client (smbnetfs's default is 20 s).
SMB_TIMEOUT_MS=${PODMIGRATE_SMB_TIMEOUT_MS:-10000}

log() { printf '\033[1m[smb]\033[0m %s\n' "$*" >&2; }
die() { printf '[smb] error: %s\n' "$*" >&2; exit 1; }

STATE= SERVER_PATH= SIZE= PORT= MOUNTS=()
parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --state) STATE=${2:?}; shift ;;
      --path) SERVER_PATH=${2:?}; shift ;;
      --size) SIZE=${2:?}; shift ;;
      --port) PORT=${2:?}; shift ;;
      *=*) MOUNTS+=("$1") ;;
      *) die "unknown argument: $1" ;;
    esac
    shift
  done
  [ -n "$STATE" ] || die "--state is required"
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# A PID file's process, only if its command line still names $2.
recorded_pid() {
  local file=$1 marker=$2 pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  pid_alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  echo "$pid"
}

stop_pid() {
  local pid=$1 i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

is_mounted() { awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo; }

server_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

write_server_config() {
  local s=$STATE/samba
  mkdir -p "$s/private" "$s/lock" "$s/state" "$s/cache" "$s/pid" "$s/ncalrpc" "$s/bind-dns" "$STATE/log"
  chmod 0700 "$s/private"
  cat > "$s/smb.conf" <<CONF
[global]
  server role = standalone server
  security = user
  map to guest = never
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = $PORT
  disable netbios = yes
  server min protocol = SMB2_10
  server max protocol = SMB3
  passdb backend = tdbsam:$s/private/passdb.tdb
  private dir = $s/private
  lock directory = $s/lock
  state directory = $s/state
  cache directory = $s/cache
  pid directory = $s/pid
  ncalrpc dir = $s/ncalrpc
  binddns dir = $s/bind-dns
  log file = $STATE/log/smbd.log
  max log size = 10000
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes

[$SHARE_NAME]
  path = $SERVER_PATH
  read only = no
  valid users = root
  strict sync = yes
  create mask = 0600
  directory mask = 0700
CONF
}

start_server() {
  local pid i
  if pid=$(recorded_pid "$STATE/smbd.pid" "$STATE/samba/smb.conf"); then
    return 0
  fi
  # smbd -F makes its own session (so no setsid here: it would fail "Failed to create session"); never with
  # --no-process-group, with which smbd kills its process group, the caller's, when it exits.
  /usr/sbin/smbd -F -s "$STATE/samba/smb.conf" >> "$STATE/log/smbd.out" 2>&1 < /dev/null 8>&- 9>&- &
  pid=$!
  echo "$pid" > "$STATE/smbd.pid"
  for ((i = 0; i < 200; i++)); do
    server_answers && { log "smbd up (pid $pid, 127.0.0.1:$PORT, serving $SERVER_PATH)"; return 0; }
    pid_alive "$pid" || { tail -n 20 "$STATE/log/smbd.log" "$STATE/log/smbd.out" >&2 || true; die "smbd exited (logs in $STATE/log)"; }
    sleep 0.1
  done
  die "smbd does not answer on 127.0.0.1:$PORT after 20 s (logs in $STATE/log)"
}

stop_server() {
  local pid
  if pid=$(recorded_pid "$STATE/smbd.pid" "$STATE/samba/smb.conf"); then
    log "stopping smbd (pid $pid and its connection processes)"
    # smbd -F leads its own process group: the per-connection children go with it (else they keep serving the mounts).
    if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
    stop_pid "$pid"
    if [ "$(pgrep -g "$pid" | head -1)" != "" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  fi
  rm -f "$STATE/smbd.pid"
}

# One node's client: its own HOME (smbnetfs and libsmbclient read $HOME/.smb), credentials in a 0600 config (smbnetfs
# silently ignores auth and link lines in a file others can read), attribute caching off (another node's replacement
# must not be seen cut at the old size), big_writes (without it writes crawl at 19 MiB/s).
mount_node() {
  local node=$1 mountpoint=$2 home=$STATE/nodes/$1 pid i
  mkdir -p "$home/.smb" "$mountpoint"
  chmod 0700 "$home" "$home/.smb"
  if is_mounted "$mountpoint" && pid=$(recorded_pid "$home/smbnetfs.pid" "$mountpoint"); then
    return 0
  fi
  is_mounted "$mountpoint" && { fusermount3 -u "$mountpoint" 2>/dev/null || umount -l "$mountpoint" || true; }
  : > "$home/.smb/smb.conf"
  (
    umask 077
    cat > "$home/.smb/smbnetfs.conf" <<CONF
smb_query_browsers "false"
smb_timeout $SMB_TIMEOUT_MS
auth "127.0.0.1" "root" "$PASSWORD"
link $SHARE_NAME "127.0.0.1:$PORT/$SHARE_NAME"
CONF
  )
  HOME=$home setsid smbnetfs "$mountpoint" -f \
    -o "config=$home/.smb/smbnetfs.conf,big_writes,attr_timeout=0,entry_timeout=0,negative_timeout=0" \
    >> "$STATE/log/smbnetfs-$node.log" 2>&1 < /dev/null 9>&- &
  pid=$!
  echo "$pid" > "$home/smbnetfs.pid"
  echo "$mountpoint" > "$home/mountpoint"
  for ((i = 0; i < 200; i++)); do
    if is_mounted "$mountpoint" && [ -d "$mountpoint/$SHARE_NAME" ] && touch "$mountpoint/$SHARE_NAME/.probe-$node" 2>/dev/null; then
      rm -f "$mountpoint/$SHARE_NAME/.probe-$node"
      log "$node: smbnetfs mounted $mountpoint (pid $pid; share $mountpoint/$SHARE_NAME)"
      return 0
    fi
    pid_alive "$pid" || { tail -20 "$STATE/log/smbnetfs-$node.log" >&2 || true; die "$node: smbnetfs exited"; }
    sleep 0.1
  done
  die "$node: $mountpoint/$SHARE_NAME is not writable after 20 s (log: $STATE/log/smbnetfs-$node.log)"
}

unmount_node() {
  local home=$1 mountpoint pid
  mountpoint=$(cat "$home/mountpoint" 2>/dev/null || true)
  if [ -n "$mountpoint" ] && is_mounted "$mountpoint"; then
    fusermount3 -u "$mountpoint" 2>/dev/null || umount -l "$mountpoint" 2>/dev/null || true
  fi
  if pid=$(recorded_pid "$home/smbnetfs.pid" "smbnetfs"); then stop_pid "$pid"; fi
  rm -f "$home/smbnetfs.pid"
}

save_settings() {
  cat > "$STATE/share.env.tmp" <<ENV
PORT=$PORT
SERVER_PATH=$SERVER_PATH
SIZE=$SIZE
ENV
  mv "$STATE/share.env.tmp" "$STATE/share.env"
}

load_settings() {
  [ -f "$STATE/share.env" ] || die "no share recorded in $STATE"
  # shellcheck disable=SC1091
  . "$STATE/share.env"
}

cmd_up() {
  command -v smbd >/dev/null && command -v smbnetfs >/dev/null && command -v fusermount3 >/dev/null \
    || die "samba, smbnetfs and fuse3 are needed: run scripts/setup.sh"
  [ -e /dev/fuse ] || die "no /dev/fuse: FUSE is needed for the SMB client"
  if [ -f "$STATE/share.env" ]; then
    local wanted_path=$SERVER_PATH
    load_settings
    [ -z "$wanted_path" ] || [ "$wanted_path" = "$SERVER_PATH" ] || die "$STATE serves $SERVER_PATH, not $wanted_path: down it first"
  fi
  [ -n "$SERVER_PATH" ] || die "--path is required"
  mkdir -p "$STATE" "$SERVER_PATH"
  chmod 0700 "$STATE"
  if [ -n "$SIZE" ] && ! is_mounted "$SERVER_PATH"; then
    mount -t tmpfs -o "size=$SIZE,mode=0700" podmigrate-smb "$SERVER_PATH"
  fi
  chmod 0700 "$SERVER_PATH"
  local picked=0
  if [ -z "$PORT" ]; then
    # Host-wide, from picking a free port until our smbd listens on it: two instances started at once (test classes
    # run in parallel) must not pick the same port, or one's clients would talk to the other's server.
    exec 8> /run/podmigrate-smb-port.lock
    flock 8
    picked=1
    PORT=4450
    while ! port_free "$PORT"; do PORT=$((PORT + 1)); done
  fi
  save_settings
  write_server_config
  printf '%s\n%s\n' "$PASSWORD" "$PASSWORD" | smbpasswd -c "$STATE/samba/smb.conf" -s -a root >/dev/null
  start_server
  if [ "$picked" = 1 ]; then flock -u 8; exec 8>&-; fi
  local m
  for m in "${MOUNTS[@]}"; do mount_node "${m%%=*}" "${m#*=}"; done
  echo "PORT=$PORT"
  echo "SERVER_PATH=$SERVER_PATH"
  for m in "${MOUNTS[@]}"; do echo "MOUNT_${m%%=*}=${m#*=}/$SHARE_NAME"; done
}

cmd_down() {
  [ -d "$STATE" ] || return 0
  local home
  for home in "$STATE"/nodes/*/; do [ -d "$home" ] && unmount_node "${home%/}"; done
  if [ -f "$STATE/share.env" ]; then load_settings; fi
  stop_server
  if [ -n "${SIZE:-}" ] && [ -n "${SERVER_PATH:-}" ] && is_mounted "$SERVER_PATH"; then
    umount "$SERVER_PATH" 2>/dev/null || umount -l "$SERVER_PATH" || true
  fi
  rm -rf "$STATE"
}

cmd_status() {
  load_settings
  local ok=0 home mountpoint
  if server_answers; then echo "smbd: up (127.0.0.1:$PORT, $SERVER_PATH)"; else echo "smbd: DOWN"; ok=1; fi
  for home in "$STATE"/nodes/*/; do
    [ -d "$home" ] || continue
    mountpoint=$(cat "$home/mountpoint" 2>/dev/null || true)
    if [ -n "$mountpoint" ] && is_mounted "$mountpoint"; then echo "$(basename "$home"): mounted $mountpoint"; else echo "$(basename "$home"): NOT MOUNTED"; ok=1; fi
  done
  return $ok
}

main() {
  local verb=${1:-}
  [ $# -gt 0 ] && shift
  parse_args "$@"
  case $verb in
    up) cmd_up ;;
    down) cmd_down ;;
    stop-server) load_settings; stop_server ;;
    start-server) load_settings; start_server ;;
    status) cmd_status ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
