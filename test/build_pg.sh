#!/usr/bin/env bash
# Builds PostgreSQL from a release tarball into a prefix of its own, once per
# tarball: the prefix is named after the tarball's SHA-256, and a build that
# finished there is reused.  Prints the pg_config of the build on its last
# line.  Used by .ci/run for PostgreSQL 18 (Debian 12 packages only 15).
#
#   bash test/build_pg.sh [TARBALL]     (as root, or as a user with sudo)
#
# TARBALL defaults to ../shared/postgresql/postgresql-18_18.6.orig.tar.bz2
# beside the repository; its SHA256SUMS, when present, must match.
# HA_PG_PREFIX_ROOT (default /opt) holds the prefixes; HA_SKIP_APT=1 skips
# apt-get.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib.sh
source "$repo/test/lib.sh"

tarball=${1:-$repo/../shared/postgresql/postgresql-18_18.6.orig.tar.bz2}
[ -f "$tarball" ] || { echo "no PostgreSQL source tarball at $tarball" >&2; exit 1; }
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
sums=$(dirname "$tarball")/SHA256SUMS
if [ -f "$sums" ]; then
	(cd "$(dirname "$tarball")" && grep " $(basename "$tarball")\$" SHA256SUMS | sha256sum -c --quiet -) >&2 ||
		{ echo "$tarball does not match $sums" >&2; exit 1; }
fi
hash=$(sha256sum "$tarball" | cut -c1-16)
prefix=${HA_PG_PREFIX_ROOT:-/opt}/postgresql-$hash
# What the build is made of: a change here rebuilds.
options="--with-openssl --with-libxml --enable-tap-tests"
stamp="$hash $options"

if [ -f "$prefix/.built-from" ] && [ "$(cat "$prefix/.built-from")" = "$stamp" ]; then
	say "reusing PostgreSQL built from $(basename "$tarball") in $prefix" >&2
	echo "$prefix/bin/pg_config"
	exit 0
fi

if [ "${HA_SKIP_APT:-0}" != 1 ]; then
	say "installing the packages PostgreSQL's build needs" >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		make gcc libc6-dev bison flex perl libreadline-dev zlib1g-dev libicu-dev \
		pkg-config libssl-dev libxml2-dev libipc-run-perl >/dev/null
fi

say "building PostgreSQL from $(basename "$tarball") into $prefix" >&2
as_root rm -rf "$prefix"
build=$(mktemp -d /tmp/hipaa_audit_pgbuild.XXXXXX)
trap 'rm -rf "$build"' EXIT
tar -C "$build" -xjf "$tarball"
src=$(find "$build" -mindepth 1 -maxdepth 1 -type d | head -1)
(
	cd "$src"
	# shellcheck disable=SC2086
	./configure --prefix="$prefix" $options >"$build/configure.log" 2>&1 ||
		{ tail -30 "$build/configure.log"; exit 1; }
	make -s -j"$(nproc)" >"$build/make.log" 2>&1 || { tail -40 "$build/make.log"; exit 1; }
	as_root make -s install >"$build/install.log" 2>&1 || { tail -20 "$build/install.log"; exit 1; }
	make -s -C contrib -j"$(nproc)" >"$build/contrib.log" 2>&1 || { tail -40 "$build/contrib.log"; exit 1; }
	as_root make -s -C contrib install >>"$build/install.log" 2>&1 || { tail -20 "$build/install.log"; exit 1; }
	# PostgreSQL::Test::Cluster and pg_regress for extensions' TAP tests.
	as_root make -s -C src/test/perl install >>"$build/install.log" 2>&1
	as_root make -s -C src/test/regress install >>"$build/install.log" 2>&1 || true
) >&2
echo "$stamp" | as_root tee "$prefix/.built-from" >/dev/null
echo "$prefix/bin/pg_config"
