#!/bin/bash
# restart.sh NODE BINDIR [VAR=VALUE...]: replace NODE's agent (slot s2) with one started from BINDIR/podmigrate with the
# same argv and environment as cluster.sh's, plus the given variables. Prints the new pid.
set -euo pipefail
node=$1 bindir=$2; shift 2
dir=/run/pm-s2/$node
if [ ! -f /tmp/rss/cmd-$node ]; then
  pid=$(cat $dir/agent.pid)
  cp /proc/$pid/cmdline /tmp/rss/cmd-$node; cp /proc/$pid/environ /tmp/rss/env-$node
fi
if [ -f $dir/agent.pid ]; then
  old=$(cat $dir/agent.pid)
  if kill -0 $old 2>/dev/null; then kill $old; for i in $(seq 100); do kill -0 $old 2>/dev/null || break; sleep 0.1; done; fi
fi
mapfile -d '' argv < /tmp/rss/cmd-$node
mapfile -d '' envv < /tmp/rss/env-$node
argv[0]=$bindir/podmigrate
setsid env -i "${envv[@]}" "$@" "${argv[@]}" >> /var/log/pm-s2/$node-agent.log 2>&1 < /dev/null &
pid=$!
echo $pid > $dir/agent.pid
for i in $(seq 600); do [ -S $dir/agent.sock ] && break; kill -0 $pid || { echo "agent died" >&2; exit 1; }; sleep 0.1; done
echo $pid
