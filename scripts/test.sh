#!/usr/bin/env bash
# The test command (README.md, .ci/run): installs the stack if it is missing, builds, publishes podmigrate-runc and
# podmigrate-agent (NativeAOT: what the nodes and the agents run), brings up the local cluster, runs every test project
# (unit, integration on real containerd/runc/CRIU, end to end), tears the cluster down.
# Usage: scripts/test.sh [extra `dotnet test` args, e.g. --filter Category=Unit]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

log() { printf '\033[1m[test]\033[0m %s\n' "$*"; }
die() { printf '[test] error: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "the tests drive containerd, runc and CRIU for real and need root (run: sudo scripts/test.sh)"

start=$(date +%s)
if ! scripts/lib/stack-ready.sh; then
  log "the node stack is missing: running scripts/setup.sh"
  scripts/setup.sh
fi

log "building (Release)"
dotnet build PodMigrate.sln -c Release -nologo -v q -clp:ErrorsOnly

# The nodes' runtime handler `podmigrate` runs podmigrate-runc published (NativeAOT) from this tree.
log "publishing podmigrate-runc"
dotnet publish src/PodMigrate.Runtime/PodMigrate.Runtime.csproj -c Release -nologo -v q -r linux-x64 -p:PublishAot=true \
  -o "$REPO/artifacts/runtime" >/dev/null
export PODMIGRATE_RUNTIME="$REPO/artifacts/runtime/podmigrate-runc"

# The agents run podmigrate-agent published (NativeAOT) from this tree, the binary the DaemonSet's image runs: the
# cluster's agents (scripts/cluster.sh) and every agent process a test starts (TestKit's AgentBinary) read
# PODMIGRATE_AGENT_BIN. (Agents hosted inside a test process are JIT by nature.)
log "publishing podmigrate-agent"
published=$(date +%s)
dotnet publish src/PodMigrate.Agent.Host/PodMigrate.Agent.Host.csproj -c Release -nologo -v q -r linux-x64 -p:PublishAot=true \
  -o "$REPO/artifacts/agent" >/dev/null
log "published podmigrate-agent in $(( $(date +%s) - published )) s (load $(cut -d' ' -f1-3 /proc/loadavg))"
export PODMIGRATE_AGENT_BIN="$REPO/artifacts/agent/podmigrate-agent"

# The cluster scripts and tests use the CLI built from this tree, not an older installed one.
export PODMIGRATE_CLI="$REPO/src/PodMigrate.Cli/bin/Release/net10.0/podmigrate"
export PODMIGRATE_REPO="$REPO"

results=$(mktemp -d)
cleanup() { scripts/cluster.sh down >/dev/null 2>&1 || true; }
trap cleanup EXIT

log "bringing up the local cluster"
scripts/cluster.sh up

log "running tests"
rc=0
dotnet test PodMigrate.sln -c Release --no-build -nologo \
  --logger "trx" --results-directory "$results" --logger "console;verbosity=normal" "$@" || rc=$?

# One closing line over all test assemblies, counted from the TRX files.
summary=$(/usr/bin/python3 - "$results" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
p = f = s = 0
for path in glob.glob(sys.argv[1] + "/*.trx"):
    c = ET.parse(path).getroot().find("t:ResultSummary/t:Counters", ns)
    if c is None: continue
    p += int(c.get("passed", 0)); f += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    s += int(c.get("notExecuted", 0))
failures = []
for path in glob.glob(sys.argv[1] + "/*.trx"):
    for r in ET.parse(path).getroot().iter("{%s}UnitTestResult" % ns["t"]):
        if r.get("outcome") in ("Failed", "Error", "Timeout", "Aborted"):
            m = r.find("t:Output/t:ErrorInfo/t:Message", ns)
            first = (m.text or "").strip().splitlines()[:3] if m is not None else []
            failures.append((r.get("testName"), r.get("duration"), first))
# The failed tests again at the very end, where a CI log's tail shows them.
for name, duration, message in failures:
    print(f"FAILED {name} [{duration}]")
    for line in message:
        print(f"    {line[:400]}")
print(f"{p} passed, {f} failed, {s} skipped")
PY
)
log "took $(( $(date +%s) - start )) s"
echo "$summary"
case "$(tail -n 1 <<<"$summary")" in
  "0 passed,"*) die "no test ran" ;;
esac
exit "$rc"
