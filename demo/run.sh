#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine: installs what it needs, builds and
# installs hipaa_audit, starts a throwaway PostgreSQL on a local socket,
# walks through an audit table of patient-record access events, and cleans
# up on exit (also on failure or Ctrl-C).
#
#   bash demo/run.sh            (as root, or as a user with sudo)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib.sh
source "$repo/test/lib.sh"

install_packages
ensure_test_user

make_work demo
trap 'exit 130' INT TERM

mkdir -p "$work/pg"
copy_and_build "$repo" "$work"

say "starting a throwaway PostgreSQL with hipaa_audit preloaded"
as_test_user bash -c "source '$work/src/test/lib.sh'; pg_start '$work/pg' 54330"

# The checkpoint signing key: Ed25519, outside the data directory, mode 600.
mkdir -p "$work/keys"
chown "$HA_USER" "$work/keys" 2>/dev/null || true
chmod 700 "$work/keys"
as_test_user openssl genpkey -algorithm ed25519 -out "$work/keys/signer.pem"
chmod 600 "$work/keys/signer.pem"

say "the demo session"
as_test_user "$PG_BIN/psql" -X -h "$work/pg" -p 54330 -U postgres -d postgres \
	-v ON_ERROR_STOP=0 -v keyfile="$work/keys/signer.pem" --echo-queries -f "$work/src/demo/demo.sql"

say "tampering with the data file itself, with the server stopped"
# What an insider with access to the disk could do: no SQL, no hooks.
file=$(as_test_user "$PG_BIN/psql" -X -At -h "$work/pg" -p 54330 -U postgres -d postgres \
	-c "SELECT pg_relation_filepath('record_access')")
as_test_user bash -c "source '$work/src/test/lib.sh'; pg_stop '$work/pg'"
as_test_user perl -e '
	my ($path, $from, $to) = @ARGV;
	open(my $fh, "+<:raw", $path) or die "$path: $!";
	local $/; my $data = <$fh>;
	my $pos = index($data, $from); die "not found\n" if $pos < 0;
	seek($fh, $pos, 0); print $fh $to; close($fh) or die;
	print "changed \"$from\" to \"$to\" at byte $pos of $path\n";' \
	"$work/pg/data/$file" 'MRN-100777' 'MRN-100999'
# With data checksums on (initdb's default from PostgreSQL 18) the insider
# also makes the page checksums fit again; only the hash chain can tell.
if as_test_user "$PG_BIN/pg_controldata" "$work/pg/data" | grep -Eq 'checksum version: +[1-9]'; then
	as_test_user "$PG_BIN/pg_checksums" --pgdata "$work/pg/data" --disable >/dev/null
	as_test_user "$PG_BIN/pg_checksums" --pgdata "$work/pg/data" --enable >/dev/null
	echo "rewrote the page checksums with pg_checksums"
fi
as_test_user bash -c "source '$work/src/test/lib.sh'; pg_start '$work/pg' 54330"
as_test_user "$PG_BIN/psql" -X -h "$work/pg" -p 54330 -U postgres -d postgres --echo-queries <<'SQL'
SELECT id, actor, patient_mrn FROM record_access WHERE patient_mrn LIKE 'MRN-100%' ORDER BY id;
SELECT ok, rows_checked, problems FROM hipaa_audit.verify('record_access');
SELECT * FROM hipaa_audit.verify_problems('record_access');
-- The signed checkpoint taken before the edit no longer matches the table.
SELECT ok, status, detail
  FROM hipaa_audit.verify_checkpoint(
         (SELECT note FROM hipaa_audit.checkpoints WHERE relid = 'record_access'::regclass ORDER BY id DESC LIMIT 1),
         hipaa_audit.verifier_key());
SQL
detected=$(as_test_user "$PG_BIN/psql" -X -At -h "$work/pg" -p 54330 -U postgres -d postgres \
	-c "SELECT count(*) FROM hipaa_audit.verify_problems('record_access') WHERE kind = 'hash_mismatch'")
checkpoint_status=$(as_test_user "$PG_BIN/psql" -X -At -h "$work/pg" -p 54330 -U postgres -d postgres \
	-c "SELECT status FROM hipaa_audit.verify_checkpoint((SELECT note FROM hipaa_audit.checkpoints WHERE relid = 'record_access'::regclass ORDER BY id DESC LIMIT 1), hipaa_audit.verifier_key())")

purged=$(as_test_user "$PG_BIN/psql" -X -At -h "$work/pg" -p 54330 -U postgres -d postgres \
	-c "SELECT (SELECT sum(rows_removed) FROM hipaa_audit.purge_receipts) || ' ' ||
	    (SELECT status FROM hipaa_audit.verify_receipt((SELECT note FROM hipaa_audit.purge_receipts
	       ORDER BY id DESC LIMIT 1), hipaa_audit.verifier_key()))")

say "what the server log recorded about the refused attempts"
grep 'hipaa_audit: refused' "$work/pg/server.log" | sed 's/^.*LOG:  //' | cut -c1-200

# The demo is also a check: it fails unless all eight attempts were refused
# and logged and all five rows survived.
refused=$(grep -c 'hipaa_audit: refused' "$work/pg/server.log" || true)
kept=$(as_test_user "$PG_BIN/psql" -X -At -h "$work/pg" -p 54330 -U postgres -d postgres \
	-c 'SELECT count(*) FROM record_access')
if [ "$refused" -ne 8 ] || [ "$kept" -ne 5 ] || [ "$detected" -ne 1 ] || [ "$checkpoint_status" != table_rewritten ] ||
	[ "$purged" != "3 ok" ]; then
	echo "demo FAILED: $refused of 8 attempts refused and logged, $kept of 5 rows kept, $detected of 1 edited row detected, checkpoint check: $checkpoint_status, purge (rows, receipt check): $purged" >&2
	exit 1
fi
say "demo passed: 8 of 8 attempts refused and logged, 5 of 5 rows kept, the edited row detected, the signed checkpoint no longer matches, 3 expired rows purged with a receipt that verifies"
