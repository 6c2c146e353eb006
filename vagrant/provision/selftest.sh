#!/bin/bash
# The LAST provisioner of every matrix machine: `vrouter-emu selftest --json` inside the box, its report
# (plus the provisioning steps as "provision:NAME" checks) written to REPORT, and its exit status returned —
# so `vagrant up` fails exactly when the selftest does.
#
#   selftest.sh MACHINE MODE REPORT [EXPECTED_KERNEL] [STANDIN_FOR]
#     MODE real     run the project's selftest (the contract: from the project directory,
#                   `sudo node bin/vrouter-emu.cjs selftest --json` prints one JSON object
#                   {ok, platform: {profile, verdict, ...}, checks: [{name, ok, detail}]} and exits 0 when
#                   every check passed, 1 when one failed, 2 on bad usage)
#     MODE standin  this script's own stand-in with the same output (Node >= 16, a TAP device, two
#                   namespaces pinging over a veth pair, a replay of examples/demo.pcap) — to exercise the
#                   matrix machinery without the real selftest; never used by CI
#
# A selftest that prints no valid report still gives a report: ok false, and a "selftest" check that says
# what happened (exit status, the first line of its stderr).
set -uo pipefail
machine=${1:?machine}
mode=${2:-real}
report=${3:-/vagrant-report.json}
expected_kernel=${4:-}
standin_for=${5:-}
# shellcheck source=lib.sh
. /vagrant/vagrant/provision/lib.sh

# json_str S: S as a JSON string literal (bash only: the stand-in and the no-node fallback use it).
json_str() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in
      '"') out+='\"' ;;
      "\\") out+="\\\\" ;;
      $'\n') out+='\n' ;;
      $'\t') out+='\t' ;;
      $'\r') out+='\r' ;;
      *)
        if [[ "$c" < " " ]]; then out+=$(printf '\\u%04x' "'$c"); else out+=$c; fi
        ;;
    esac
  done
  printf '"%s"' "$out"
}

standin_checks=()
standin_ok=1
standin_check() { # NAME OK DETAIL
  standin_checks+=("{\"name\":$(json_str "$1"),\"ok\":$([ "$2" = 1 ] && echo true || echo false),\"detail\":$(json_str "$3")}")
  [ "$2" = 1 ] || standin_ok=0
}

standin() {
  local v out
  v=$(node --version 2>/dev/null || echo none)
  if [ "$(node_major)" -ge 16 ]; then standin_check node 1 "node $v"; else standin_check node 0 "node $v (needs >= 16)"; fi
  modprobe tun >/dev/null 2>&1 || true
  if out=$(ip tuntap add dev vremu-st0 mode tap 2>&1) && ip link del vremu-st0 2>/dev/null; then
    standin_check tap 1 "ip tuntap add/del works"
  else
    standin_check tap 0 "tap: $out"
  fi
  ip netns del vremu-st-a 2>/dev/null
  ip netns del vremu-st-b 2>/dev/null
  if out=$({ ip netns add vremu-st-a && ip netns add vremu-st-b &&
    ip link add vremu-sta type veth peer name vremu-stb &&
    ip link set vremu-sta netns vremu-st-a && ip link set vremu-stb netns vremu-st-b &&
    ip -n vremu-st-a addr add 10.200.0.1/24 dev vremu-sta && ip -n vremu-st-b addr add 10.200.0.2/24 dev vremu-stb &&
    ip -n vremu-st-a link set vremu-sta up && ip -n vremu-st-b link set vremu-stb up &&
    ip netns exec vremu-st-a ping -c 2 -i 0.2 -W 2 10.200.0.2; } 2>&1); then
    standin_check netns-ping 1 "$(echo "$out" | grep -m1 'packets transmitted')"
  else
    standin_check netns-ping 0 "$(echo "$out" | tail -n 1)"
  fi
  ip netns del vremu-st-a 2>/dev/null
  ip netns del vremu-st-b 2>/dev/null
  if out=$(cd "$VREMU_PROJECT" && timeout 600 node bin/vrouter-emu.cjs replay examples/demo.pcap \
    --params module-params/small.conf 2>&1); then
    standin_check replay 1 "replay of examples/demo.pcap: $(echo "$out" | grep -c .) lines of output"
  else
    standin_check replay 0 "replay failed: $(echo "$out" | tail -n 1)"
  fi
  local IFS=,
  printf '{"ok":%s,"platform":{"profile":"standin","verdict":"development","detail":%s},"checks":[%s]}\n' \
    "$([ $standin_ok = 1 ] && echo true || echo false)" \
    "$(json_str "stand-in selftest (vagrant/provision/selftest.sh); $(uname -r)")" "${standin_checks[*]}"
  [ $standin_ok = 1 ]
}

cd "$VREMU_PROJECT" || die "no $VREMU_PROJECT"
out=/var/log/vremu-selftest.json
err=/var/log/vremu-selftest.log
start=$(date +%s)
case "$mode" in
  real)
    log "running: node bin/vrouter-emu.cjs selftest --json"
    timeout 1800 node bin/vrouter-emu.cjs selftest --json > "$out" 2> "$err"
    rc=$?
    ;;
  standin)
    log "running the STAND-IN selftest (VREMU_SELFTEST=standin)"
    standin > "$out" 2> "$err"
    rc=$?
    ;;
  *) die "unknown selftest mode $mode (real|standin)" ;;
esac
secs=$(($(date +%s) - start))
log "selftest exited $rc after ${secs}s"

merge=$(mktemp)
cat > "$merge" <<'EOF'
// Merge the selftest's stdout (one JSON object) and the provisioning outcomes into the box's report.
// Runs on every box's Node, Node 10 included: ES2015 only.
'use strict';
var fs = require('fs');
var a = process.argv.slice(2);
var out = a[0], err = a[1], status = a[2], report = a[3], rc = Number(a[4]);
var meta = { machine: a[5], mode: a[6], seconds: Number(a[7]), expectedKernel: a[8] || null, standinFor: a[9] || null };
function read(f) { try { return fs.readFileSync(f, 'utf8'); } catch (e) { return ''; } }
function parse(text) {
  var t = text.trim();
  try { return JSON.parse(t); } catch (e) { /* fall through: maybe log lines before the object */ }
  var lines = t.split('\n');
  for (var i = lines.length - 1; i >= 0; i--) {
    if (lines[i].charAt(0) !== '{') continue;
    try { return JSON.parse(lines.slice(i).join('\n')); } catch (e) { /* keep looking */ }
  }
  return null;
}
var r = parse(read(out));
var valid = r && typeof r === 'object' && typeof r.ok === 'boolean' && Array.isArray(r.checks) &&
  r.platform && typeof r.platform === 'object';
var stderrLines = read(err).split('\n').filter(function (l) { return l.trim() !== ''; });
if (!valid) {
  var why = 'exit ' + rc + ', no valid JSON report on stdout';
  // The error line of a crash (a Node too old for the bundle: "SyntaxError: Unexpected token ?"), else the first.
  var errLine = stderrLines.filter(function (l) { return /^\s*\w*Error\b|error:/.test(l); })[0] || stderrLines[0];
  if (errLine) why += ': ' + errLine.trim().slice(0, 300);
  else if (read(out).trim()) why += ': ' + read(out).trim().split('\n')[0].slice(0, 300);
  r = { ok: false, platform: { profile: 'unknown', verdict: 'unknown' }, checks: [{ name: 'selftest', ok: false, detail: why }] };
} else if ((rc === 0) !== r.ok) {
  r.checks.push({ name: 'selftest-exit', ok: false, detail: 'exit status ' + rc + ' disagrees with ok=' + r.ok });
}
read(status).split('\n').forEach(function (l) {
  var f = l.split('\t');
  if (f.length >= 3) r.checks.push({ name: 'provision:' + f[0], ok: f[1] === '1', detail: f.slice(2).join(' ') });
});
meta.exit = rc;
meta.stderrTail = stderrLines.slice(-5);
r.vagrant = meta;
fs.writeFileSync(report + '.tmp', JSON.stringify(r, null, 2) + '\n');
fs.renameSync(report + '.tmp', report);
var bad = r.checks.filter(function (c) { return !c.ok; });
console.log('report ' + report + ': ok=' + r.ok + ', platform ' + r.platform.profile + '/' + r.platform.verdict + ', ' +
  r.checks.length + ' checks, ' + bad.length + ' failed');
bad.forEach(function (c) { console.log('  FAILED ' + c.name + ': ' + c.detail); });
process.exit(valid ? 0 : 3);
EOF
node "$merge" "$out" "$err" "$VREMU_STATUS" "$report" "$rc" "$machine" "$mode" "$secs" "$expected_kernel" \
  "$standin_for" > /var/log/vremu-merge.log 2>&1
mrc=$?
rm -f "$merge"
if [ "$mrc" -ne 0 ] && [ "$mrc" -ne 3 ]; then
  # No usable node: a bash-made report.
  printf '{"ok":false,"platform":{"profile":"unknown","verdict":"unknown"},"checks":[{"name":"selftest","ok":false,"detail":%s}],"vagrant":{"machine":%s,"mode":%s,"exit":%s}}\n' \
    "$(json_str "exit $rc; no node to run or merge the report: $(head -n 1 "$err" 2> /dev/null)")" \
    "$(json_str "$machine")" "$(json_str "$mode")" "$rc" > "$report"
  [ "$rc" -ne 0 ] || rc=1
fi
cat /var/log/vremu-merge.log
[ "$mrc" -ne 3 ] || [ "$rc" -ne 0 ] || rc=1 # exit 0 without a report is a failure
chmod 0644 "$report"
exit "$rc"
