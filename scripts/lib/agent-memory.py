#!/usr/bin/env python3
"""Resident memory of processes by mapping kind, from /proc/<pid>/smaps (MiB): dll/so = mapped assemblies and native
libraries (clean file pages), jit(shmem) = the memfd W^X double mapping of JIT code and stubs, malloc = glibc [heap] and
its 64 MiB arena heaps, anon = the rest (GC regions, thread stacks, loader heaps).

Usage: scripts/lib/agent-memory.py PID...   e.g. $(cat /run/podmigrate/node-*/agent.pid); see README "The agent's memory".
"""
import sys,re,collections
def classify(pid):
    maps=[]; 
    for line in open(f'/proc/{pid}/smaps'):
        m=re.match(r'^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$',line)
        if m: maps.append([int(m.group(1),16),int(m.group(2),16),m.group(3),m.group(4).strip(),0])
        elif line.startswith('Rss:'): maps[-1][4]=int(line.split()[1])
    cats=collections.Counter()
    for i,(a,b,perm,name,rss) in enumerate(maps):
        if name=='[heap]': cur='malloc'
        elif 'doublemapper' in name: cur='jit(shmem)'
        elif '.dll' in name: cur='dll'
        elif '.so' in name: cur='so'
        elif name.startswith('['): cur='other'
        elif name: cur='file-other'
        else:
            cur='anon'
            if a % (1<<26)==0 and perm.startswith('rw'):
                end=b
                if i+1<len(maps) and maps[i+1][0]==b and maps[i+1][2].startswith('---') and not maps[i+1][3]: end=maps[i+1][1]
                if end-a==(1<<26): cur='malloc'
        cats[cur]+=rss
    return cats
keys=['dll','so','jit(shmem)','malloc','anon','other','file-other']
for pid in sys.argv[1:]:
    c=classify(pid)
    print(f'{pid} total={sum(c.values())//1024}MiB '+' '.join(f'{k}={c[k]//1024}' for k in keys))
