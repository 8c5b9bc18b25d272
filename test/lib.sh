# Shared shell functions of the demo and the test runner: install what is
# needed, build and install the extension, and run a throwaway PostgreSQL as
# an unprivileged user.  Sourced, not run.

# PG_CONFIG=/path/to/pg_config selects another installed PostgreSQL (its
# bindir, major version and install directories); without it, Debian's 15.
if [ -n "${PG_CONFIG:-}" ]; then
	PG_BIN=$("$PG_CONFIG" --bindir)
	PG_MAJOR=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
else
	PG_MAJOR=${PG_MAJOR:-15}
	PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
fi
HA_USER=${HA_USER:-hipaa_audit_test}

# Debian packages the build, the demo and the tests need.  With PG_CONFIG
# naming a PostgreSQL that Debian does not package (one built from source),
# only what does not come with PostgreSQL itself, and Debian's 15 as the
# older version of the cross-version test; pgTAP, which is SQL only, is
# taken from Debian's package for 15 and copied into that installation.
HA_TOOL_PACKAGES="make gcc libc6-dev perl sudo libssl-dev libkrb5-dev
  libtap-parser-sourcehandler-pgtap-perl libipc-run-perl libtest-simple-perl openssl
  golang-go golang-golang-x-mod-dev libcurl4-openssl-dev"
if [ -z "${PG_CONFIG:-}" ] || [ "$PG_BIN" = "/usr/lib/postgresql/$PG_MAJOR/bin" ]; then
	HA_DEBIAN_PG=1
	HA_PACKAGES="$HA_TOOL_PACKAGES
  postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR postgresql-server-dev-$PG_MAJOR
  postgresql-$PG_MAJOR-pgtap postgresql-$PG_MAJOR-cron postgresql-$PG_MAJOR-partman"
else
	HA_DEBIAN_PG=0
	HA_PACKAGES="$HA_TOOL_PACKAGES postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap"
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
	if [ "${HA_SKIP_APT:-0}" = 1 ]; then
		say "skipping apt-get (HA_SKIP_APT=1)"
		install_pgtap
		return 0
	fi
	say "installing Debian packages"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $HA_PACKAGES >/dev/null
	install_pgtap
}

# pgTAP into a PostgreSQL that Debian does not package: its SQL files only.
install_pgtap() {
	local share
	[ "$HA_DEBIAN_PG" = 1 ] && return 0
	share=$("$PG_BIN/pg_config" --sharedir)/extension
	[ -f "$share/pgtap.control" ] && return 0
	as_root cp /usr/share/postgresql/15/extension/pgtap* "$share/"
}

build_and_install() {
	local src=$1 flags
	say "building and installing hipaa_audit"
	# Warnings are errors in CI only; the shipped Makefile never sets -Werror.
	# (PostgreSQL's own headers are not -Wextra clean: -isystem quiets them.)
	flags=""
	if [ "${CI:-}" = true ]; then
		flags="-Wall -Wextra -Werror -isystem $("$PG_BIN/pg_config" --includedir-server 2>/dev/null || pg_config --includedir-server)"
	fi
	make -C "$src" -s clean >/dev/null
	make -C "$src" -s PG_CONFIG="$PG_BIN/pg_config" COPT="$flags"
	as_root make -C "$src" -s PG_CONFIG="$PG_BIN/pg_config" install
}

# copy_and_build REPO WORK: copy the repository (without .git and test
# leftovers) to WORK/src, build and install it unless HA_SKIP_BUILD=1, and
# hand WORK to the unprivileged account.
copy_and_build() {
	local repo=$1 work=$2
	mkdir -p "$work/src"
	tar -C "$repo" --exclude=.git --exclude=tmp_check --exclude=results -cf - . | tar -C "$work/src" -xf -
	if [ "${HA_SKIP_BUILD:-0}" = 1 ]; then
		say "skipping build and install (HA_SKIP_BUILD=1)"
	else
		build_and_install "$work/src"
	fi
	chmod 755 "$work"
	chown -R "$HA_USER" "$work" 2>/dev/null || true
}

# make_work NAME: a fresh work directory in $work, removed on exit (kept
# with HA_KEEP=1) after stopping its server; a script may define
# extra_cleanup to run first.
make_work() {
	work=$(mktemp -d "/tmp/hipaa_audit_$1.XXXXXX")
	trap work_cleanup EXIT
	trap 'exit 130' INT TERM
}

work_cleanup() {
	if declare -F extra_cleanup >/dev/null; then extra_cleanup; fi
	as_test_user bash -c "source '$work/src/test/lib.sh'; pg_stop '$work/pg'" 2>/dev/null || true
	if [ "${HA_KEEP:-0}" = 1 ]; then
		echo "kept $work"
	else
		rm -rf "$work"
	fi
}

# An unprivileged account to run the server and the tests (PostgreSQL
# refuses to run as root).
ensure_test_user() {
	if [ "$(id -u)" -ne 0 ]; then
		HA_USER=$(id -un)
		return 0
	fi
	if ! id "$HA_USER" >/dev/null 2>&1; then
		useradd --system --create-home --shell /bin/bash "$HA_USER"
	fi
}

# Run a command as the unprivileged account, with a clean environment.
as_test_user() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
	else
		runuser -u "$HA_USER" -- env -i HOME="$(getent passwd "$HA_USER" | cut -d: -f6)" \
			PATH="$PG_BIN:/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 CI="${CI:-}" \
			${PG_CONFIG:+PG_CONFIG="$PG_CONFIG"} ${HA_OLD_PG_BIN:+HA_OLD_PG_BIN="$HA_OLD_PG_BIN"} \
			${HA_BENCH_SMOKE:+HA_BENCH_SMOKE="$HA_BENCH_SMOKE"} "$@"
	fi
}

# pg_start DIR PORT: initdb (if needed) and start a server with the library
# preloaded, listening only on a Unix socket in DIR.
pg_start() {
	local dir=$1 port=$2
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		"$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
		cat >>"$dir/data/postgresql.conf" <<EOF
shared_preload_libraries = 'hipaa_audit'
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	fi
	"$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

pg_stop() {
	local dir=$1
	if [ -f "$dir/data/postmaster.pid" ]; then
		"$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
}
