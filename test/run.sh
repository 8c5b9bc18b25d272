#!/usr/bin/env bash
# The full test suite, from a fresh Debian 12 machine: installs what it needs,
# builds and installs hipaa_audit, then runs pg_regress, pgTAP and TAP
# (PostgreSQL::Test::Cluster) suites as an unprivileged user against
# throwaway servers.  Exits non-zero if anything fails.
#
#   bash test/run.sh            (as root, or as a user with sudo)
#
# HA_SKIP_APT=1 skips apt-get when the packages are known to be there.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib.sh
source "$repo/test/lib.sh"

install_packages
ensure_test_user

make_work test

# Build from a copy the unprivileged user can read and write.
copy_and_build "$repo" "$work"

as_test_user bash "$work/src/test/suite.sh" "$work"
