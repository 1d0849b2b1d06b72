#!/usr/bin/env bash
# A Python >= 3.12 interpreter, for the one test tool that needs it: WESkit's weskit-client
# 1.0.1 uses PEP 701 f-strings, and Debian 12 ships Python 3.11. If python3 on PATH is already
# >= 3.12 (with venv and ssl) it is used as it is; otherwise CPython 3.13 is built from source
# into a private prefix. The source is Debian trixie's python3.13 upstream tarball, fetched from
# the Debian mirror this machine's apt uses (besides the language registries, the one source a
# developer's machine and CI reach; SPE_DEBIAN_MIRROR overrides it); trixie's binary packages
# would pull in trixie's libc, so they are not an option on Debian 12.
#
# Usage: tests/peers/python312.sh
#   Prints the interpreter's path (the only stdout line). Build output goes to
#   ${SPE_PYTHON312_PREFIX}.build.log, whose tail is printed on failure.
#   Prefix: ${SPE_PYTHON312_PREFIX:-$HOME/.cache/spe/python3.13}. A second run finds the stamp
#   file there and only checks that the interpreter still works. Concurrent runs (tests/run-all.sh
#   starts one in the background) wait for each other on a lock instead of building twice.
#
# Cost: 175 s from a cold cache on this project's 2-core machine when nothing else runs (download,
# configure, make -j2, install; 4.3 min of CPU), 0.2 s when the stamp is there. No PGO or LTO:
# they would several-fold that for speed a test client does not need.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VERSION=3.13.5
POOL_PATH=pool/main/p/python3.13/python3.13_$VERSION.orig.tar.xz
SHA256=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
PREFIX=${SPE_PYTHON312_PREFIX:-${HOME:?}/.cache/spe/python3.13}
PY=$PREFIX/bin/python3.13
STAMP=$PREFIX/.spe-built
LOG=$PREFIX.build.log
# The modules the venv and pip need (ensurepip, venv, ssl for PyPI, zlib/bz2/lzma for wheels and
# sdists, ctypes for packages that load C libraries); a build that lacks one is not usable.
CHECK='import ssl, zlib, bz2, lzma, ctypes, ensurepip, venv'

# A Python >= 3.12 that the machine already has (Debian 13 and later) needs no build.
sys_py=$(command -v python3 || true)
if [ -n "$sys_py" ] && "$sys_py" -c "import sys; sys.exit(sys.version_info < (3, 12))" \
  && "$sys_py" -c "$CHECK" 2>/dev/null; then
  echo "$sys_py"; exit 0
fi

works() { [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION $SHA256" ] && "$PY" -c "$CHECK" 2>/dev/null; }

mkdir -p "$(dirname "$PREFIX")"
exec 9>"$PREFIX.lock"
if ! flock -n 9; then
  log "another run is building Python $VERSION; waiting for it"
  flock 9
fi
works && { echo "$PY"; exit 0; }

# Bookworm's packages only: headers for the modules checked above, and the toolchain.
need=()
for p in build-essential pkg-config curl xz-utils libssl-dev zlib1g-dev libbz2-dev liblzma-dev libffi-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

fail() {
  log "last lines of $LOG:"
  tail -n 40 "$LOG" >&2
  die "building Python $VERSION failed: $*"
}

# The tarball is kept beside the prefix, so a rebuild does not download it again; it is checked
# every time, since a truncated or tampered file must never be built.
# The main archive's URI (its suite has no dash, unlike -updates and -security); apt knows it only
# once its lists are there.
debian_mirror() {
  # shellcheck disable=SC2016 # $(REPO_URI) is apt's format field, not a shell expansion
  apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | awk '$2 !~ /-/ { print $1; exit }'
}
tarball=$(dirname "$PREFIX")/python3.13_$VERSION.orig.tar.xz
if [ ! -s "$tarball" ] || ! echo "$SHA256  $tarball" | sha256sum -c --status; then
  mirror=${SPE_DEBIAN_MIRROR:-$(debian_mirror)}
  if [ -z "$mirror" ]; then
    [ "$(id -u)" = 0 ] || die "apt has no package lists yet: run apt-get update, or set SPE_DEBIAN_MIRROR"
    (flock 8 && apt-get update -qq >&2) 8>"$APT_LOCK" || die "apt-get update failed"
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || die "apt names no Debian archive; set SPE_DEBIAN_MIRROR to a Debian mirror's URL"
  fi
  URL=${mirror%/}/$POOL_PATH
  log "downloading $URL"
  curl -fsSL --retry 3 -o "$tarball.part" "$URL" || die "download of $URL failed"
  if ! echo "$SHA256  $tarball.part" | sha256sum -c --status; then
    got=$(sha256sum "$tarball.part" | cut -d' ' -f1)
    rm -f "$tarball.part"
    die "sha256 mismatch for $URL: expected $SHA256, got $got (file deleted)"
  fi
  mv "$tarball.part" "$tarball"
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
start=$SECONDS
log "building Python $VERSION into $PREFIX (log: $LOG)"
: >"$LOG"
tar -xJf "$tarball" -C "$build" --strip-components=1 || die "cannot unpack $tarball"
# A half-installed prefix from an earlier failed run would be mistaken for a working one.
rm -rf "$PREFIX"
(
  cd "$build"
  # --disable-test-modules: the test suite is a third of the install, and nothing here runs it.
  ./configure --prefix="$PREFIX" --disable-test-modules --with-ensurepip=install >>"$LOG" 2>&1 \
    || exit 10
  make -j"$(nproc)" >>"$LOG" 2>&1 || exit 11
  # altinstall: python3.13 only, no python3 that could shadow Debian's if the prefix is put on PATH.
  make altinstall >>"$LOG" 2>&1 || exit 12
) || case $? in
  10) fail "configure" ;;
  11) fail "make" ;;
  *) fail "make altinstall" ;;
esac
# make succeeds even when an optional module's headers were missing: check the ones needed.
"$PY" -c "$CHECK" >>"$LOG" 2>&1 || fail "the built interpreter cannot run: $CHECK"
echo "$VERSION $SHA256" >"$STAMP"
log "Python $VERSION built in $((SECONDS - start)) s"
echo "$PY"
