#!/usr/bin/env bash
# Exit 0 when everything scripts/setup.sh installs is present (it is then not run again by demo.sh / test.sh).
PREFIX=${PODMIGRATE_PREFIX:-/opt/podmigrate}
for f in /usr/local/sbin/criu /usr/local/bin/checkpointctl "$PREFIX/containerd/usr/bin/containerd" \
         "$PREFIX/containerd-1.7/usr/bin/containerd" /usr/bin/clang /usr/include/zlib.h /usr/sbin/runc \
         /usr/bin/docker-registry /usr/lib/cni/bridge /bin/busybox /usr/sbin/iptables-restore \
         /usr/sbin/smbd /usr/bin/smbpasswd /usr/bin/smbnetfs /usr/bin/fusermount3 \
         "$PREFIX/apis/usr/share/gocode/src/github.com/containerd/containerd/api/services/tasks/v1/tasks.proto" \
         "$PREFIX/apis/usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto" \
         "$PREFIX/apis/criu/rpc.proto" "$PREFIX/apis/criu/images/core.proto" "$PREFIX/apis/criu/images/pstree.proto"; do
  [ -e "$f" ] || { echo "missing: $f" >&2; exit 1; }
done
grep -qx skip-in-flight /etc/criu/runc.conf 2>/dev/null || { echo "missing: /etc/criu/runc.conf with skip-in-flight" >&2; exit 1; }
command -v dotnet >/dev/null || { echo "missing: dotnet" >&2; exit 1; }
/usr/bin/python3 -c 'import grpc' 2>/dev/null || { echo "missing: python3-grpcio" >&2; exit 1; }
/usr/local/sbin/criu check >/dev/null 2>&1 || { echo "criu check fails" >&2; exit 1; }
# CRIU < 4.2 cannot dump inet sockets on kernels >= 6.16 (criu#2718).
v=$(/usr/local/sbin/criu --version | sed -n 's/^Version: *//p')
[ "$(printf '%s\n4.2\n' "$v" | sort -V | head -1)" = 4.2 ] || { echo "criu $v is older than 4.2" >&2; exit 1; }
