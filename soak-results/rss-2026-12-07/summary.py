import collections,statistics
rows=collections.defaultdict(list)
for line in open('/tmp/rss/results.tsv'):
    f=line.rstrip('\n').split('\t')
    run,name,phase,node,load=f[:5]; v=f[5].split()
    if run=='0': continue
    rows[(name,phase)].append((run,node,load,[int(x) for x in v[:8]]))
for (name,phase),lst in sorted(rows.items(), key=lambda k:(k[0][1],k[0][0])):
    rss=[x[3][0] for x in lst]
    def med(i): return statistics.median(x[3][i] for x in lst)/1024
    print(f"{phase:5} {name:9} n={len(lst)} Rss {min(rss)/1024:.1f}-{max(rss)/1024:.1f} med {statistics.median(rss)/1024:.1f} | Pss {med(1):.1f} ShCl {med(2):.1f} PrivD {med(3):.1f} Anon {med(4):.1f} File {med(5):.1f} Shmem {med(6):.1f} | loads {','.join(sorted(set(x[2] for x in lst)))}")
