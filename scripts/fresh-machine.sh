#!/usr/bin/env bash
# The README's two commands on a fresh machine, proved in CI (issue 16). CI's machine has the Debian
# packages already (.ci/run installs them first), so the "fresh" state is made by hiding their commands:
# every command of scripts/system-deps.json is left out of a PATH made of links to everything else. The
# preflight finds commands on PATH only, so to it and to the tests this host is one without the packages.
# In that state, in a fresh clone of HEAD:
#   1. as an ordinary user, without the C toolchain and the test tools: `npm install` completes and says
#      in one line that the addon is not built and why; `npm start` names the packages in one line, exit 2;
#   2. as an ordinary user, with the toolchain: `npm test` builds the addon, runs, and skips the tests
#      that need root or a missing tool, each with its reason, and ends "N passed, 0 failed, M skipped";
#   3. as root: `npm test` installs the missing packages through apt-get and runs everything. apt-get is
#      the real one, called by a wrapper: the packages are installed already, so apt-get checks their names
#      and installs nothing, and the wrapper then puts their commands back on the PATH, as the install
#      would have. This is the suite's real run in CI (.ci/run runs nothing else with `npm test`).
#   bash scripts/fresh-machine.sh    (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
WORK=$(mktemp -d /tmp/vremu-fresh-XXXXXX)
chmod 755 "$WORK"
# The logs stay in /tmp/vremu-fresh-logs for a look after a failure.
cleanup() { mkdir -p /tmp/vremu-fresh-logs; cp "$WORK"/*.log /tmp/vremu-fresh-logs/ 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

say() { echo "fresh-machine: $*"; }
fail() { echo "fresh-machine: FAILED: $*" >&2; exit 1; }

hide_build=$(node -e "for (const e of require('$SRC/scripts/system-deps.json').build) console.log(e.command)")
hide_tools=$(node -e "for (const e of require('$SRC/scripts/system-deps.json').tools) console.log(e.command)")

# make_path DIR HIDDEN...: DIR gets a link to every command on the usual PATH except the hidden ones.
make_path() {
  local dir=$1; shift
  mkdir -p "$dir"
  local d f n
  for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do
      n=$(basename "$f")
      [ -e "$dir/$n" ] && continue
      case " $* " in *" $n "*) continue ;; esac
      [ -x "$f" ] && [ ! -d "$f" ] && ln -s "$f" "$dir/$n"
    done
  done
}
make_path "$WORK/path-bare" $hide_build $hide_tools
make_path "$WORK/path-tools" $hide_tools
for c in $hide_build $hide_tools; do [ ! -e "$WORK/path-bare/$c" ] || fail "$c still on the bare PATH"; done

# The apt-get wrapper of step 3 (see above): the real apt-get, then the installed packages' commands back.
rm -f "$WORK/path-tools/apt-get"
cat > "$WORK/path-tools/apt-get" <<EOF
#!/bin/bash
echo "apt-get \$*" >> "$WORK/apt.log"
/usr/bin/apt-get "\$@" || exit \$?
if [ "\$1" = install ]; then
  for p in "\$@"; do
    case "\$p" in -*) continue ;; esac # options, not packages (node would take them as its own)
    node -e "for (const e of require('$SRC/scripts/system-deps.json').tools) if (e.package === process.argv[1]) console.log(e.command)" "\$p" |
      while read -r c; do w=\$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v "\$c") && ln -sf "\$w" "$WORK/path-tools/\$c"; done
  done
fi
EOF
chmod 755 "$WORK/path-tools/apt-get"

git clone -q "$SRC" "$WORK/clone"
mkdir -p "$WORK/home"
chown -R 65534:65534 "$WORK/clone" "$WORK/home"
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups env -i HOME="$WORK/home" PATH="$1" npm_config_cache="$WORK/home/.npm" bash -c "cd '$WORK/clone' && $2"; }

say "1. no toolchain, no test tools, not root: npm install, then npm start"
as_user "$WORK/path-bare" "npm install --no-audit --no-fund" > "$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "npm install failed without a toolchain"; }
grep -q '^vrouter-emu: the C addon is not built: cc, make.* not found (Debian packages build-essential' "$WORK/install.log" || { cat "$WORK/install.log"; fail "npm install did not name the missing toolchain"; }
[ ! -e "$WORK/clone/build/Release/vrouter_native.node" ] || fail "an addon was built without a toolchain"
set +e
as_user "$WORK/path-bare" "npm start --silent" > "$WORK/start.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || { cat "$WORK/start.log"; fail "npm start exited $rc, not 2"; }
[ "$(wc -l < "$WORK/start.log")" -eq 1 ] || { cat "$WORK/start.log"; fail "npm start printed more than one line"; }
grep -q 'install the Debian packages build-essential' "$WORK/start.log" || { cat "$WORK/start.log"; fail "npm start did not name the packages"; }
say "   $(cat "$WORK/start.log")"

say "2. toolchain, no test tools, not root: npm test"
set +e
as_user "$WORK/path-tools" "npm test" > "$WORK/test-user.log" 2>&1
rc=$?
set -e
tail -3 "$WORK/test-user.log"
[ "$rc" -eq 0 ] || { tail -60 "$WORK/test-user.log"; fail "npm test as a user exited $rc"; }
grep -qE '^[0-9]+ passed, 0 failed, [0-9]+ skipped$' "$WORK/test-user.log" || fail "npm test as a user: no 'N passed, 0 failed, M skipped' line"
grep -q '^vrouter-emu: not root: the end-to-end tests' "$WORK/test-user.log" || fail "npm test as a user did not say the end-to-end tests are skipped"
grep -q '^vrouter-emu: missing test tools: ' "$WORK/test-user.log" || fail "npm test as a user did not list the missing tools"
grep -q '^Skipped here' "$WORK/test-user.log" || fail "npm test as a user did not list the skipped tests"
grep -q 'skipped: needs root' "$WORK/test-user.log" || fail "no skipped test names its reason"

say "3. no test tools, root: npm test installs them and runs everything"
set +e
(cd "$WORK/clone" && env PATH="$WORK/path-tools" npm test 2>&1 | tee "$WORK/test-root.log")
rc=${PIPESTATUS[0]}
set -e
grep -q '^vrouter-emu: installing the Debian packages the build and the end-to-end tests need: ' "$WORK/test-root.log" || fail "npm test as root did not say what it installs"
grep -q '^apt-get install ' "$WORK/apt.log" || fail "npm test as root did not run apt-get install"
[ "$rc" -eq 0 ] || fail "npm test as root exited $rc"
if grep -q 'skipped: needs' "$WORK/test-root.log"; then fail "npm test as root skipped tests"; fi
say "passed: $(grep -E '^[0-9]+ passed, ' "$WORK/test-root.log" | tail -1)"
