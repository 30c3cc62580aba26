#!/bin/bash
# sample.sh PID: one line of KiB: Rss Pss Shared_Clean Private_Dirty Anonymous RssFile RssShmem Threads + agent-memory kinds
pid=$1
r=$(awk '/^(Rss|Pss|Shared_Clean|Private_Dirty|Anonymous):/{printf "%s ", $2}' /proc/$pid/smaps_rollup)
s=$(awk '/^(RssFile|RssShmem|Threads):/{printf "%s ", $2}' /proc/$pid/status)
k=$(python3 /work/wt/rss/scripts/lib/agent-memory.py $pid | cut -d' ' -f2-)
echo "$r$s$k"
