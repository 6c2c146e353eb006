#!/usr/bin/env bash
# VMware's vCenter simulator (vcsim) and govc, built once from Debian's govmomi source package and cached,
# for the vCenter tests (test/vcenter/). See /work/shared/reference/vcsim.md for why it is built this way:
# Debian ships govmomi's library (golang-github-vmware-govmomi-dev) but neither govc nor vcsim, so the
# source package's orig tarball is fetched and the two commands are built in GOPATH mode against the
# library packages already installed.
#
#   bash scripts/vcsim.sh           build if needed (idempotent); prints the two paths, vcsim first
#   bash scripts/vcsim.sh --print   prints the two paths if they are built, exit 1 otherwise
#
# The cache is /var/cache/vrouter-emu/govmomi-0.24.2/{vcsim,govc}; a user who cannot write there gets
# ~/.cache/vrouter-emu/… instead ($XDG_CACHE_HOME honoured), and $VROUTER_EMU_CACHE replaces both. Nothing
# needs root: the system's apt configuration is never touched, the deb-src entry and its lists live in a
# temporary directory given to apt with -o. A missing prerequisite is one line naming the Debian package,
# exit 2.
set -euo pipefail

VERSION=0.24.2
SRCPKG=golang-github-vmware-govmomi
if [ -n "${VROUTER_EMU_CACHE:-}" ]; then
  ROOTS=("$VROUTER_EMU_CACHE")
else
  ROOTS=(/var/cache/vrouter-emu "${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/vrouter-emu")
fi

die() { echo "vcsim.sh: $*" >&2; exit 2; }
use() { CACHE="$1/govmomi-$VERSION"; VCSIM="$CACHE/vcsim"; GOVC="$CACHE/govc"; }
built() { [ -x "$VCSIM" ] && [ -x "$GOVC" ]; }
show() { echo "$VCSIM"; echo "$GOVC"; }
# find_built: selects the first cache that holds both binaries.
find_built() {
  local r
  for r in "${ROOTS[@]}"; do use "$r"; if built; then return 0; fi; done
  return 1
}

case "${1:-}" in
  --print) if find_built; then show; exit 0; else exit 1; fi ;;
  '') ;;
  *) echo "usage: bash scripts/vcsim.sh [--print]" >&2; exit 2 ;;
esac
if find_built; then show; exit 0; fi

# What the build needs, each with the Debian package that provides it.
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: install the Debian package $2 (apt-get install -y $2)"; }
need_dir() { [ -d "$1" ] || die "$1 is missing: install the Debian package $2 (apt-get install -y $2)"; }
need_cmd go golang-go
need_cmd apt-get apt
need_cmd xz xz-utils
need_cmd tar tar
need_dir /usr/share/gocode/src/github.com/vmware/govmomi golang-github-vmware-govmomi-dev
need_dir /usr/share/gocode/src/github.com/kr/pretty golang-github-kr-pretty-dev
DEVVER="$(dpkg-query -W -f '${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || true)"
case "$DEVVER" in
  "$VERSION"-*) ;;
  *) die "golang-github-vmware-govmomi-dev is ${DEVVER:-not installed}, this script builds $VERSION (Debian 12's): install golang-github-vmware-govmomi-dev=$VERSION-*" ;;
esac

# Build into the first cache that can be written.
CACHE=
for r in "${ROOTS[@]}"; do
  use "$r"
  if mkdir -p "$CACHE" 2>/dev/null && [ -w "$CACHE" ]; then break; fi
  CACHE=
done
[ -n "$CACHE" ] || die "cannot write any of ${ROOTS[*]}: set VROUTER_EMU_CACHE to a writable directory"

# One build at a time (two test runs may start together); the second one finds the binaries built.
exec 9>"$CACHE/.lock"
command -v flock >/dev/null 2>&1 && flock 9
if built; then show; exit 0; fi

TMP="$(mktemp -d /tmp/vcsim-build.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
# apt downloads as the unprivileged _apt user: it must be able to enter and write the temporary dirs.
chmod 755 "$TMP"
mkdir -p "$TMP/parts" "$TMP/lists/partial" "$TMP/src" "$TMP/gp/src/github.com/vmware/govmomi" "$TMP/out"

# A deb-src entry for the machine's own Debian mirror and release: the first deb822 stanza of
# /etc/apt/sources.list.d/debian.sources (Debian 12's default), else the first "deb" line of sources.list.
CODENAME="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
[ -n "$CODENAME" ] || CODENAME=bookworm
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  awk -v suite="$CODENAME" '
    /^[[:space:]]*$/ { if (done_one) exit; next }
    /^#/ { next }
    /^Types:/ { print "Types: deb-src"; done_one = 1; next }
    /^Suites:/ { print "Suites: " suite; next }
    { print }
  ' /etc/apt/sources.list.d/debian.sources >"$TMP/parts/src.sources"
elif [ -f /etc/apt/sources.list ]; then
  awk -v suite="$CODENAME" '$1 == "deb" { $1 = "deb-src"; $3 = suite; print; exit }' /etc/apt/sources.list >"$TMP/parts/src.list"
fi
ls "$TMP/parts"/* >/dev/null 2>&1 && [ -s "$(ls "$TMP/parts"/* | head -1)" ] ||
  die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list to fetch the source package $SRCPKG from"
chmod -R a+rX "$TMP"
chown -R _apt "$TMP/lists" "$TMP/src" 2>/dev/null || true

APT=(apt-get -q
  -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$TMP/parts"
  -o Dir::State::Lists="$TMP/lists"
  -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
echo "vcsim.sh: fetching the Debian source package $SRCPKG=$DEVVER" >&2
"${APT[@]}" update >"$TMP/apt.log" 2>&1 ||
  die "apt-get update of a temporary deb-src list failed (see below); the Debian mirror must be reachable: $(tail -1 "$TMP/apt.log")"
(cd "$TMP/src" && "${APT[@]}" source --download-only "$SRCPKG=$DEVVER") >>"$TMP/apt.log" 2>&1 ||
  die "apt-get source --download-only $SRCPKG=$DEVVER failed: $(tail -1 "$TMP/apt.log")"
ORIG="$(ls "$TMP/src/${SRCPKG}_$VERSION.orig.tar."* 2>/dev/null | head -1)"
[ -n "$ORIG" ] || die "the source package $SRCPKG=$DEVVER came without ${SRCPKG}_$VERSION.orig.tar.*"
tar -xf "$ORIG" --strip-components=1 -C "$TMP/gp/src/github.com/vmware/govmomi"

# GOPATH mode: govmomi from the tarball comes first, every other dependency from Debian's -dev packages.
echo "vcsim.sh: building vcsim and govc (about a minute)" >&2
(
  cd "$TMP/gp/src/github.com/vmware/govmomi"
  export GO111MODULE=off GOPATH="$TMP/gp:/usr/share/gocode" GOCACHE="$TMP/gocache" CGO_ENABLED=0 GOFLAGS=
  go build -o "$TMP/out/vcsim" ./vcsim
  go build -o "$TMP/out/govc" ./govc
) >"$TMP/build.log" 2>&1 || {
  tail -20 "$TMP/build.log" >&2
  die "go build of vcsim/govc failed (output above); a Go dependency may be missing: install golang-github-vmware-govmomi-dev and golang-github-kr-pretty-dev"
}
# Install atomically: a concurrent --print sees both binaries or neither.
mv "$TMP/out/govc" "$GOVC.new" && mv "$GOVC.new" "$GOVC"
mv "$TMP/out/vcsim" "$VCSIM.new" && mv "$VCSIM.new" "$VCSIM"
show
