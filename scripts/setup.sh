#!/usr/bin/env bash
# Installs the PodMigrate node stack from Debian's packages without upgrading the host's base system:
#   CRIU 4.2 + checkpointctl + libcriu-dev  in a private Debian root (run through patchelf'd copies),
#   containerd 2.1 (sid binaries, unpacked, not installed), containerd 1.7 (trixie's, likewise: a node without CRI
#   restore), runc, iptables, CNI plugins, busybox-static, docker-registry, the containerd / CRI / CRIU API
#   definitions, clang + zlib1g-dev (NativeAOT), Samba + smbnetfs + fuse3 (`cluster.sh up --share smb`), then builds PodMigrate, installs the CLI and publishes podmigrate-runc.
# Root, idempotent: a second run only re-checks and rebuilds.
set -euo pipefail

PREFIX=${PODMIGRATE_PREFIX:-/opt/podmigrate}
# CRIU comes from sid: trixie's 4.1.1 passes `criu check` but cannot dump any process with an inet socket on
# kernels >= 6.16 ("sockets: Can't get 1:16 opt: Operation not supported", criu#2718, fixed in 4.2).
CRIU_SUITE=${PODMIGRATE_CRIU_SUITE:-sid}
CRIU_ROOT=$PREFIX/criu-root-$CRIU_SUITE
CTRD_DIR=$PREFIX/containerd
CTRD17_DIR=$PREFIX/containerd-1.7
RUNTIME_DIR=$PREFIX/runtime
API_DIR=$PREFIX/apis
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SKIP_BUILD=${PODMIGRATE_SKIP_BUILD:-0}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (installs packages, writes $PREFIX and /usr/local)"

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confold)

add_sources() {
  local f=/etc/apt/sources.list.d/podmigrate-trixie-sid.sources pin=/etc/apt/preferences.d/podmigrate-trixie-sid
  if [ ! -f "$f" ]; then
    log "adding trixie and sid apt sources with low pin priority (nothing upgrades by accident)"
    cat > "$f" <<SRC
Types: deb
URIs: $MIRROR
Suites: trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat > "$pin" <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: *
Pin: release n=sid
Pin-Priority: 50
PIN
    apt-get update -q
  elif [ ! -d /var/lib/apt/lists ] || ! ls /var/lib/apt/lists/*sid*Packages >/dev/null 2>&1; then
    apt-get update -q
  fi
}

install_host_packages() {
  local pkgs=(debootstrap patchelf runc iptables containernetworking-plugins busybox-static
              docker-registry python3-grpcio python3-protobuf zstd pigz curl iproute2 gcc libc6-dev
              libzstd1 jq clang zlib1g-dev
              samba smbclient smbnetfs fuse3)
  local missing=()
  for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing bookworm packages: ${missing[*]}"
    apt-get install "${APT_OPTS[@]}" --no-install-recommends "${missing[@]}"
  fi
  # Likewise Samba (cluster.sh up --share smb runs its own smbd on a private config): stop the daemons the package's
  # init scripts may have started with the system's /etc/samba/smb.conf, never an instance started with -s <conf>.
  local p
  for p in $(pgrep -x smbd; pgrep -x nmbd); do
    if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qE '^/usr/sbin/(smbd|nmbd) (-D|--daemon|--foreground --no-process-group) ?$'; then
      kill "$p" 2>/dev/null || true
    fi
  done
  # Debian starts docker-registry as a service on install where it can; our cluster runs its own on loopback.
  if pgrep -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' >/dev/null 2>&1; then
    pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' || true
  fi
}

# kubectl (tests and the demo drive the in-process API server with it): trixie's package needs only libc >= 2.34,
# so it installs on bookworm without pulling anything else. An existing /usr/bin/kubectl (any source) is kept.
install_kubectl() {
  if [ ! -x /usr/bin/kubectl ]; then
    log "installing kubectl from trixie"
    apt-get install "${APT_OPTS[@]}" --no-install-recommends -t trixie kubectl
  fi
  [ -x /usr/bin/kubectl ] || die "kubectl is missing after install"
}

# A private Debian root holds CRIU 4.2 (bookworm's 3.17 fails on this kernel, trixie's 4.1.1 on inet sockets),
# libcriu-dev (rpc.proto) and checkpointctl; their binaries are copied out and pointed at that root's loader and
# libraries, so the host's libc and packages stay as they are.
install_criu_root() {
  if [ ! -x "$CRIU_ROOT/usr/sbin/criu" ] || [ ! -x "$CRIU_ROOT/usr/bin/checkpointctl" ] || [ ! -f "$CRIU_ROOT/usr/include/criu/rpc.proto" ]; then
    log "debootstrapping a minimal $CRIU_SUITE root with criu, libcriu-dev, checkpointctl into $CRIU_ROOT"
    rm -rf "$CRIU_ROOT.partial"
    mkdir -p "$PREFIX"
    debootstrap --variant=minbase --include=criu,libcriu-dev,checkpointctl "$CRIU_SUITE" "$CRIU_ROOT.partial" "$MIRROR" \
      > "$PREFIX/debootstrap.log" 2>&1 || { tail -20 "$PREFIX/debootstrap.log" >&2; die "debootstrap failed (log: $PREFIX/debootstrap.log)"; }
    rm -rf "$CRIU_ROOT"; mv "$CRIU_ROOT.partial" "$CRIU_ROOT"
  fi
  local libs="$CRIU_ROOT/lib/x86_64-linux-gnu:$CRIU_ROOT/usr/lib/x86_64-linux-gnu"
  local b
  for b in usr/sbin/criu:/usr/local/sbin/criu usr/bin/checkpointctl:/usr/local/bin/checkpointctl; do
    local src=$CRIU_ROOT/${b%%:*} dst=${b##*:}
    if [ ! -x "$dst" ] || [ "$src" -nt "$dst" ] || ! grep -q "$CRIU_ROOT" "$dst"; then
      log "installing $dst (patched to run on $CRIU_SUITE's libc from $CRIU_ROOT)"
      cp "$src" "$dst.tmp"
      # --force-rpath: an RPATH (unlike RUNPATH) also applies to the libraries' own dependencies.
      patchelf --force-rpath --set-interpreter "$CRIU_ROOT/lib64/ld-linux-x86-64.so.2" --set-rpath "$libs" "$dst.tmp"
      mv "$dst.tmp" "$dst"
    fi
  done
}

# containerd 2.1 from sid: its binaries need only libc >= 2.34, so they are unpacked, not installed
# (installing would replace bookworm's packages and pull sid dependencies).
install_containerd() {
  if [ ! -x "$CTRD_DIR/usr/bin/containerd" ]; then
    log "fetching containerd from sid into $CTRD_DIR"
    local tmp; tmp=$(mktemp -d); chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q containerd/sid >/dev/null)
    rm -rf "$CTRD_DIR"; mkdir -p "$CTRD_DIR"
    dpkg-deb -x "$tmp"/containerd_*.deb "$CTRD_DIR"
    rm -rf "$tmp"
  fi
  "$CTRD_DIR/usr/bin/containerd" --version >/dev/null || die "containerd from sid does not run on this host"
}

# containerd 1.7 from trixie, unpacked into its own dir the same way: it never had restore through CRI, so a node on
# it stands in for a current runtime with that path off (scripts/cluster.sh runs node-b on it by default).
install_containerd_17() {
  if [ ! -x "$CTRD17_DIR/usr/bin/containerd" ]; then
    log "fetching containerd 1.7 from trixie into $CTRD17_DIR"
    local tmp; tmp=$(mktemp -d); chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q containerd/trixie >/dev/null)
    rm -rf "$CTRD17_DIR"; mkdir -p "$CTRD17_DIR"
    dpkg-deb -x "$tmp"/containerd_*.deb "$CTRD17_DIR"
    rm -rf "$tmp"
  fi
  "$CTRD17_DIR/usr/bin/containerd" --version | grep -q ' v\{0,1\}1\.7\.' || die "containerd 1.7 from trixie does not run on this host"
}

# API definitions: the containerd API and CRI API .proto files from sid, unpacked into one tree
# (their Go import paths resolve from $API_DIR/usr/share/gocode/src); CRIU's rpc.proto from the trixie root.
install_api_definitions() {
  local root=$API_DIR/usr/share/gocode/src
  if [ ! -f "$root/github.com/containerd/containerd/api/services/tasks/v1/tasks.proto" ] || [ ! -f "$root/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto" ]; then
    log "fetching containerd API and CRI API definitions from sid into $API_DIR"
    local tmp; tmp=$(mktemp -d); chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q golang-github-containerd-containerd-api-dev/sid golang-k8s-cri-api-dev/sid >/dev/null)
    rm -rf "$API_DIR"; mkdir -p "$API_DIR"
    for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$API_DIR"; done
    rm -rf "$tmp"
  fi
  mkdir -p "$API_DIR/criu"
  cp "$CRIU_ROOT/usr/include/criu/rpc.proto" "$API_DIR/criu/rpc.proto"
  # CRIU's image schema (the restoring node reads the credentials the checkpointed processes will get back): no
  # binary package ships images/*.proto, but python3-pycriu of the same version carries their descriptors.
  local criu_version; criu_version=$(chroot_pkg_version criu)
  if [ "$(cat "$API_DIR/criu/images/.version" 2>/dev/null)" != "$criu_version" ]; then
    log "fetching CRIU $criu_version's image schema (python3-pycriu) into $API_DIR/criu/images"
    local tmp; tmp=$(mktemp -d); chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q "python3-pycriu=$criu_version" >/dev/null) \
      || die "python3-pycriu $criu_version (the version of CRIU in $CRIU_ROOT) is not in the archive any more: remove $CRIU_ROOT and run setup again"
    dpkg-deb -x "$tmp"/python3-pycriu_*.deb "$tmp/x"
    rm -rf "$API_DIR/criu/images"
    /usr/bin/python3 "$REPO/scripts/lib/criu-image-protos.py" "$tmp/x/usr/lib/python3/dist-packages/pycriu/images" "$API_DIR/criu/images"
    echo "$criu_version" > "$API_DIR/criu/images/.version"
    rm -rf "$tmp"
  fi
}

# runc hands CRIU this file on every checkpoint and restore of a container (unless the container names its own in the
# annotation org.criu.config). A pod moves to another node and another IP, so its TCP connections cannot follow it:
# connections still in a listen queue are left behind (skip-in-flight: a probe or client connecting at the freeze
# instant would otherwise fail the dump) and established ones come back closed (tcp-close), as after a network blip;
# clients reconnect. An agent DaemonSet installs the same file on each node (see README.md).
install_criu_runc_config() {
  local conf=/etc/criu/runc.conf
  if [ -f "$conf" ] && ! grep -q '^# podmigrate' "$conf"; then
    log "keeping $conf (not ours): make sure it has skip-in-flight and tcp-close"
    return
  fi
  mkdir -p /etc/criu
  printf '%s\n' "# podmigrate: CRIU options for runc checkpoint/restore (scripts/setup.sh)" skip-in-flight tcp-close > "$conf.tmp"
  mv "$conf.tmp" "$conf"
}

build_and_install_cli() {
  [ "$SKIP_BUILD" = 1 ] && return 0
  command -v dotnet >/dev/null || die "the .NET 10 SDK (dotnet) is not on PATH"
  log "building PodMigrate"
  dotnet build "$REPO/PodMigrate.sln" -c Release -nologo -v q -p:PodMigrateApiRoot="$API_DIR" >/dev/null \
    || dotnet build "$REPO/PodMigrate.sln" -c Release -nologo -v m -p:PodMigrateApiRoot="$API_DIR"
  log "installing the podmigrate CLI and agent into $PREFIX"
  dotnet publish "$REPO/src/PodMigrate.Cli/PodMigrate.Cli.csproj" -c Release -nologo -v q -o "$PREFIX/cli" -p:PodMigrateApiRoot="$API_DIR" >/dev/null
  cat > /usr/local/bin/podmigrate.tmp <<W
#!/bin/sh
exec "$PREFIX/cli/podmigrate" "\$@"
W
  chmod 755 /usr/local/bin/podmigrate.tmp; mv /usr/local/bin/podmigrate.tmp /usr/local/bin/podmigrate
  publish_runtime
}

# podmigrate-runc, the runtime handler `podmigrate` of every node (NativeAOT: it runs once per runc call).
publish_runtime() {
  log "publishing podmigrate-runc (NativeAOT) into $RUNTIME_DIR"
  dotnet publish "$REPO/src/PodMigrate.Runtime/PodMigrate.Runtime.csproj" -c Release -nologo -v q -r linux-x64 \
    -p:PublishAot=true -o "$RUNTIME_DIR.tmp" >/dev/null
  rm -rf "$RUNTIME_DIR"; mv "$RUNTIME_DIR.tmp" "$RUNTIME_DIR"
  "$RUNTIME_DIR/podmigrate-runc" --version >/dev/null || die "$RUNTIME_DIR/podmigrate-runc does not run"
}

# The version of a package installed in the private CRIU root (its dpkg database, read without chroot).
chroot_pkg_version() { dpkg-query --admindir="$CRIU_ROOT/var/lib/dpkg" -W -f='${Version}' "$1" 2>/dev/null; }

report() {
  log "installed:"
  printf '  %-16s %s\n' criu "$(chroot_pkg_version criu) ($CRIU_SUITE)"
  printf '  %-16s %s\n' checkpointctl "$(chroot_pkg_version checkpointctl)"
  printf '  %-16s %s\n' containerd "$("$CTRD_DIR/usr/bin/containerd" --version)"
  printf '  %-16s %s\n' containerd-1.7 "$("$CTRD17_DIR/usr/bin/containerd" --version)"
  printf '  %-16s %s\n' runc "$(runc --version | head -1)"
  printf '  %-16s %s\n' iptables "$(iptables --version)"
  printf '  %-16s %s\n' cni-plugins "$(dpkg-query -W -f='${Version}' containernetworking-plugins)"
  printf '  %-16s %s\n' docker-registry "$(dpkg-query -W -f='${Version}' docker-registry)"
  printf '  %-16s %s\n' busybox-static "$(dpkg-query -W -f='${Version}' busybox-static)"
  printf '  %-16s %s\n' libc "$(dpkg-query -W -f='${Version}' libc6)"
  printf '  %-16s %s\n' dotnet "$(dotnet --version 2>/dev/null || echo missing)"
  log "criu check:"
  /usr/local/sbin/criu check 2>&1 | grep -v 'RLIMIT_NOFILE' | sed 's/^/  /'
  /usr/local/sbin/criu check >/dev/null 2>&1 || die "criu check failed"
}

add_sources
install_host_packages
install_kubectl
install_criu_root
install_containerd
install_containerd_17
install_api_definitions
install_criu_runc_config
build_and_install_cli
report
