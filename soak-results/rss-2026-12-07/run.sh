#!/bin/bash
# run.sh RUN NAME BINDIR [VAR=VALUE...]: one measurement of a variant on both agents: idle 30 s after serving, then one
# checkpoint (s2-a) + direct restore (s2-b) of a 64 MiB memhog, then idle 30 s again. Appends to /tmp/rss/results.tsv.
set -uo pipefail
. /tmp/rss-env.sh
run=$1 name=$2 bindir=$3; shift 3
pa=$(/tmp/rss/restart.sh s2-a $bindir "$@") || exit 1
pb=$(/tmp/rss/restart.sh s2-b $bindir "$@") || exit 1
sleep 30
load=$(cut -d' ' -f1 /proc/loadavg)
echo -e "$run\t$name\tidle\ts2-a\t$load\t$(/tmp/rss/sample.sh $pa)" >> /tmp/rss/results.tsv
echo -e "$run\t$name\tidle\ts2-b\t$load\t$(/tmp/rss/sample.sh $pb)" >> /tmp/rss/results.tsv
nice -n 5 $PODMIGRATE_CLI bench migration --methods direct --sizes 64 --prefault 0 --from s2-a --to s2-b > /tmp/rss/bench-$run-$name.txt 2>&1 || echo "bench failed: $run $name" >&2
grep -q "PASS" /tmp/rss/bench-$run-$name.txt || echo "bench no PASS: $run $name" >&2
sleep 30
load=$(cut -d' ' -f1 /proc/loadavg)
echo -e "$run\t$name\tcycle\ts2-a\t$load\t$(/tmp/rss/sample.sh $pa)" >> /tmp/rss/results.tsv
echo -e "$run\t$name\tcycle\ts2-b\t$load\t$(/tmp/rss/sample.sh $pb)" >> /tmp/rss/results.tsv
