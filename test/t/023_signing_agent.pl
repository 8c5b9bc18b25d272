# Signing through the signing agent (agent/hipaa_audit_signer.c): a real
# agent process on a real Unix socket signs checkpoints and purge receipts
# that verify with verify_checkpoint()/verify_receipt() and with openssl;
# the server has no key to read; the agent's log records every signed note
# and every refusal; the agent refuses what is not a hipaa_audit note, and
# a peer it does not know.  Failures are clear errors with nothing stored:
# the agent down, an agent answering garbage or a signature that does not
# verify, a stalled agent (cancel returns promptly; the wait times out),
# an agent of another name, and a key file set as well as an agent.
#
# The test runs as one OS account, so the agent here shares the server's
# account; the key file is removed once the agent has read it, as the
# agent's own account would keep it from the server in a real setup.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use IO::Socket::UNIX;
use Time::HiRes qw(time usleep);
use Digest::SHA qw(sha256 sha256_hex);
use Digest::MD5 qw(md5_hex);
use MIME::Base64 qw(encode_base64 decode_base64);
use HaTest;
use HaNote;

$ENV{PGCLIENTENCODING} = 'UTF8';

my $node = ha_node('agent',
	init => { extra => [ '--encoding=UTF8', '--locale=C' ] },
	conf => "include_if_exists = 'signer.conf'\n");
my $datadir = $node->data_dir;
my $keydir  = PostgreSQL::Test::Utils::tempdir;
my $sockdir = PostgreSQL::Test::Utils::tempdir_short;    # sun_path is short
my $agent_log = "$keydir/agent.log";
my $name      = 'audit.example.org';

# ------------------------------------------------------------------ helpers

sub sql
{
	my ($sql, %o) = @_;
	return $node->safe_psql('postgres', $sql, %o);
}

# Run SQL expected to fail; returns stderr with SQLSTATEs (VERBOSITY verbose).
sub sql_err
{
	my ($sql, %o) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql", %o);
	return $rc == 0 ? "(no error) $out" : $err;
}

sub note_sql
{
	my ($note) = @_;
	return "convert_from('\\x" . unpack('H*', $note) . "'::bytea, 'UTF8')";
}

# What is stored: checkpoints, receipts, and rows of the purged tables.
sub stored
{
	return sql(q{SELECT (SELECT count(*) FROM hipaa_audit.checkpoints) || '/' ||
		(SELECT count(*) FROM hipaa_audit.purge_receipts) || '/' ||
		(SELECT count(*) FROM t_p1) || '/' || (SELECT count(*) FROM t_p2)});
}

# Point the server at an agent (and a key file, normally none); reload and
# wait until new sessions see it.
sub configure
{
	my (%o) = @_;
	my $agent = $o{agent} // '';
	my $keyfile = $o{keyfile} // '';
	my $sname = $o{name} // $name;
	write_file("$datadir/signer.conf",
		"hipaa_audit.signing_agent = '$agent'\n"
		  . "hipaa_audit.signing_key_file = '$keyfile'\n"
		  . "hipaa_audit.signer_name = '$sname'\n");
	$node->reload;
	my $want = md5_hex("$agent|$keyfile|$sname");
	ok( $node->poll_query_until('postgres',
			"SELECT md5(current_setting('hipaa_audit.signing_agent', true) || '|' || "
			  . "current_setting('hipaa_audit.signing_key_file') || '|' || "
			  . "current_setting('hipaa_audit.signer_name')) = '$want'"),
		"settings reloaded (agent " . ($agent eq '' ? 'none' : 'set') . ')');
}

sub wait_for_socket
{
	my ($path) = @_;
	my $deadline = time() + ha_timeout();
	while (time() < $deadline)
	{
		return 1 if -S $path;
		usleep(100_000);
	}
	return 0;
}

# Start the real agent on a socket; returns (harness, pid).
my $agent_bin = 'hipaa_audit_signer';
my $agent_err = '';
sub start_agent
{
	my ($key, $sock, %o) = @_;
	my @cmd = ($agent_bin, '-k', $key, '-n', $o{name} // $name, '-l', $agent_log,
		'-u', $o{user} // $<, '-S', $sock);
	push @cmd, '-s', $o{sysid} if $o{sysid};
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>', \my $out, '2>', \$agent_err);
	ok(wait_for_socket($sock), "agent listening on its socket") or diag($agent_err);
	return ($h, $h->{KIDS}[0]{PID});
}

# A stand-in agent in Perl that misbehaves as told.
my $fake_script = q{
	use strict; use IO::Socket::UNIX;
	my ($path, $mode, $line, $keyline) = @ARGV;
	unlink $path;
	my $srv = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Local => $path, Listen => 16) or die $!;
	$| = 1;
	while (my $c = $srv->accept)
	{
		my $hdr = <$c>;
		next unless defined $hdr;
		my ($len) = $hdr =~ / sign (\d+)$/;
		my $body = '';
		read($c, $body, $len) if $len;
		if ($mode eq 'stall') { 1 while sysread($c, my $b, 4096); next; }
		next if $mode eq 'close';
		$line =~ s/\\\\n/\n/g;
		print $c (($hdr =~ / key$/ && $keyline) ? "$keyline\n" : $line);
		close $c;
	}
};

sub start_fake
{
	my ($sock, $mode, $line, $keyline) = @_;
	unlink $sock;
	my $h = IPC::Run::start([ 'perl', '-e', $fake_script, $sock, $mode, $line // '', $keyline // '' ],
		'<', \undef, '>', \my $o, '2>', \my $e);
	ok(wait_for_socket($sock), "stand-in agent ($mode) listening");
	return $h;
}

sub stop
{
	my ($h, $sig) = @_;
	$h->signal($sig // 'TERM');
	$h->finish;
}

# One request straight to an agent's socket; the answer line.
sub ask_agent
{
	my ($sock, $request) = @_;
	my $c = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $sock)
	  or return "connect: $!";
	print $c $request;
	$c->shutdown(1);
	local $/ = "\n";
	my $a = <$c>;
	close $c;
	return $a // '(nothing)';
}

# The signed records of the agent's log: [ header, body ].
sub logged_notes
{
	my @recs;
	my $log = slurp_file($agent_log);
	while ($log =~ /^(\S+ signed [^\n]*)\n((?:  [^\n]*\n)*)/mg)
	{
		my ($h, $b) = ($1, $2);
		$b =~ s/^  //mg;
		push @recs, [ $h, $b ];
	}
	return @recs;
}

# openssl pkeyutl -verify of a note's signature by the key.
sub openssl_verifies
{
	my ($note, $pubpem) = @_;
	my ($body, $sigs) = split_note($note);
	write_file("$keydir/body.txt", $body);
	write_file("$keydir/sig.bin", substr($sigs->[0][1], 4));
	my ($ok) = run_openssl('pkeyutl', '-verify', '-pubin', '-inkey', $pubpem, '-rawin',
		'-in', "$keydir/body.txt", '-sigfile', "$keydir/sig.bin");
	return $ok;
}

# ------------------------------------------------------------------ setup

my ($sysid) = sql('SELECT system_identifier FROM pg_control_system()');
my $key = "$keydir/agent.pem";
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $key);
chmod 0600, $key;
my $pub    = raw_pub($key);
my $vkey   = verifier_key_of($name, $pub);
my $keyid  = key_id($name, $pub);
my $pubpem = "$keydir/agent.pub.pem";
openssl_ok('pkey', '-in', $key, '-pubout', '-out', $pubpem);
my $pem_text = read_raw($key);
my ($pem_b64) = $pem_text =~ /-----\n(\S+)\n-----END/;
my $priv_raw = substr(decode_base64($pem_b64), -32);

my ($plist_ok) = IPC::Run::run([ $agent_bin, '-k', $key, '-n', $name, '-p' ], '>', \my $printed);
ok($plist_ok, "$agent_bin is installed and runs");
is($printed, "$vkey\n", 'the agent prints the verifier key of its key (-p)');

sql(q{
	CREATE TABLE t1 (id int, note text);
	SELECT hipaa_audit.protect('t1', chains => 2);
	INSERT INTO t1 SELECT g, 'row ' || g FROM generate_series(1, 6) g;
	CREATE TABLE t_p1 (id int);
	SELECT hipaa_audit.protect('t_p1', retention => '2 seconds', chains => 2);
	INSERT INTO t_p1 SELECT g FROM generate_series(1, 6) g;
	CREATE TABLE t_p2 (id int);
	SELECT hipaa_audit.protect('t_p2', retention => '2 seconds');
	INSERT INTO t_p2 SELECT g FROM generate_series(1, 4) g;
});

my $sock = "$sockdir/sign.sock";
my ($agent, $agent_pid) = start_agent($key, $sock, sysid => $sysid);

# The agent has the key in memory; the file goes, as the agent's own
# account would keep it from the server.
unlink $key or die;
configure(agent => $sock);

# ---------------------------------------------------------------------
# 1. Checkpoints and purge receipts signed by the agent verify.
# ---------------------------------------------------------------------
is(sql('SELECT hipaa_audit.verifier_key()'), $vkey, 'verifier_key() reports the agent\'s key');

my $cp = pack('H*', sql(q{SELECT encode(convert_to(hipaa_audit.checkpoint('t1'), 'UTF8'), 'hex')}));
like($cp, qr/\Ahipaa_audit\/$sysid\/[0-9a-f-]{36}\n\d+\n[A-Za-z0-9+\/]{43}=\ncheckpoint v2\n.*\n\n\Q$EMDASH$name\E \S+\n\z/s,
	'checkpoint() through the agent returns a signed note');
is(sql('SELECT ok::text || status FROM hipaa_audit.verify_checkpoint(' . note_sql($cp) . ', ' . lit($vkey) . ')'),
	'trueok', 'verify_checkpoint() accepts it with the agent\'s verifier key');
ok(openssl_verifies($cp, $pubpem), 'openssl pkeyutl -verify accepts its signature over the body');
is((split_note($cp))[1][0][1] =~ /\A\Q$keyid\E/ ? 1 : 0, 1, 'its signature line carries the key ID');
is(sql('SELECT count(*) FROM hipaa_audit.checkpoints'), '1', 'the checkpoint is stored');

ok($node->poll_query_until('postgres',
		q{SELECT (SELECT rows_removed FROM hipaa_audit.purge_expired('t_p1', dry_run => true)) = 6
		  AND (SELECT rows_removed FROM hipaa_audit.purge_expired('t_p2', dry_run => true)) = 4}),
	'the rows of t_p1 and t_p2 are past their retention (server clock)');
my $rc = sql(q{SELECT encode(convert_to(receipt, 'UTF8'), 'hex') FROM hipaa_audit.purge_expired('t_p1')});
my $receipt = pack('H*', $rc);
like($receipt, qr/\Ahipaa_audit\/$sysid\/[0-9a-f-]{36}\npurge v1\n/, 'purge_expired() through the agent returns a receipt');
is(sql('SELECT ok::text || status FROM hipaa_audit.verify_receipt(' . note_sql($receipt) . ', ' . lit($vkey) . ')'),
	'trueok', 'verify_receipt() accepts it with the agent\'s verifier key');
ok(openssl_verifies($receipt, $pubpem), 'openssl pkeyutl -verify accepts the receipt\'s signature');
is(stored(), '2/1/0/4', 'receipt stored, t_p1 purged (after the checkpoint purge_expired() takes first)');

# ---------------------------------------------------------------------
# 2. The server has no key to read.
# ---------------------------------------------------------------------
is(sql(q{SELECT current_setting('hipaa_audit.signing_key_file')}), '', 'no signing key file configured');
like(sql_err("SELECT pg_read_binary_file('$key')"), qr/ERROR:  58P01: could not open file/,
	'the key file the agent read is gone for the server');
foreach my $f ('environ', 'maps', 'mem')
{
	like(sql_err("SELECT pg_read_binary_file('/proc/$agent_pid/$f')"), qr/ERROR:  42501: could not open file .*: Permission denied/,
		"pg_read_binary_file() of the agent's /proc/<pid>/$f fails (not dumpable)");
}
my $cmdline = sql("SELECT encode(pg_read_binary_file('/proc/$agent_pid/cmdline'), 'escape')");
unlike($cmdline, qr/\Q$pem_b64\E/, 'the agent\'s command line holds no key material');
my $everywhere = slurp_file($node->logfile) . slurp_file($agent_log)
  . sql(q{SELECT string_agg(setting, ' ') FROM pg_settings})
  . sql(q{SELECT string_agg(note, ' ') FROM hipaa_audit.checkpoints});
ok( index($everywhere, $pem_b64) < 0
	  && index($everywhere, encode_base64($priv_raw, '')) < 0
	  && index($everywhere, unpack('H*', $priv_raw)) < 0
	  && index($everywhere, $priv_raw) < 0,
	'no trace of the private key in the server log, the agent log, the settings or the stored notes');

# ---------------------------------------------------------------------
# 3. The agent's log records each signed note.
# ---------------------------------------------------------------------
{
	my @recs = logged_notes();
	is(scalar(@recs), 3, 'the agent\'s log has three signed records');
	my ($cpbody, $cpsigs) = split_note($cp);
	my ($rbody, $rsigs) = split_note($receipt);
	is($recs[0][1], $cpbody, 'the first is the checkpoint\'s body');
	like($recs[1][1], qr/\A[^\n]+\n\d+\n[^\n]+\ncheckpoint v2\ntable public\.t_p1\n/,
		'the second is the checkpoint of t_p1 that purge_expired() takes first');
	is($recs[2][1], $rbody, 'the third is the receipt\'s body');
	my $cpsig = encode_base64($cpsigs->[0][1], '');
	like($recs[0][0], qr/ signed checkpoint sha256=\Q${\ sha256_hex($cpbody)}\E peer_uid=$< .* sig=\Q$cpsig\E$/,
		'the record has the kind, body hash, peer and signature');
	like($recs[2][0], qr/ signed purge sha256=\Q${\ sha256_hex($rbody)}\E /, 'the receipt\'s record says purge');
}

# ---------------------------------------------------------------------
# 4. The agent refuses what is not a hipaa_audit note.
# ---------------------------------------------------------------------
{
	my ($cpbody) = split_note($cp);
	my $sign = sub { my ($b) = @_; return ask_agent($sock, "hipaa_audit-sign 1 sign " . length($b) . "\n" . $b); };
	like($sign->("hello\n"), qr/\Aerror refused the body is not a hipaa_audit note/, 'a body that is not a note: refused');
	(my $other = $cpbody) =~ s/\Ahipaa_audit\/\d+\//hipaa_audit\/1234\//;
	like($sign->($other), qr/\Aerror refused the note is of another database cluster/, 'a note of another cluster (-s): refused');
	(my $v3 = $cpbody) =~ s/\ncheckpoint v2\n/\ncheckpoint v3\n/;
	like($sign->($v3), qr/\Aerror refused the fourth line of a tree checkpoint body is not "checkpoint v2"/, 'another body version: refused');
	(my $v9 = $cpbody) =~ s/\A([^\n]*)\n\d+\n[^\n]*\ncheckpoint v2\n/$1\ncheckpoint v9\n/;
	like($sign->($v9), qr/\Aerror refused the body is neither a checkpoint nor a purge receipt \(line 2\)/, 'an unknown kind: refused');
	(my $noroot = $cpbody) =~ s/\A([^\n]*\n\d+\n)[^\n]*\n/$1not-a-root\n/;
	like($sign->($noroot), qr/\Aerror refused the third line of a checkpoint v2 body is not a base64 SHA-256 root/, 'a tree checkpoint without a root: refused');
	like($sign->("$cpbody\nrows 1\n"), qr/\Aerror refused the body contains an empty line/, 'a body with an empty line: refused');
	like($sign->("${cpbody}x\r\n"), qr/\Aerror refused the body contains a control character/, 'a control character: refused');
	like(ask_agent($sock, "hipaa_audit-sign 1 sign 65537\n"), qr/\Aerror too_large /, 'a body over 64 kB: refused');
	like(ask_agent($sock, "hipaa_audit-sign 2 key\n"), qr/\Aerror version /, 'another protocol version: refused');
	like(ask_agent($sock, "GET / HTTP/1.0\n"), qr/\Aerror request /, 'not a request: refused');
	like(ask_agent($sock, "x" x 200), qr/\Aerror request /, 'an overlong request line: refused');
	like($sign->($cpbody), qr/\Aok \Q$vkey\E \S+\n\z/, 'the same body unchanged is signed');
	my $log = slurp_file($agent_log);
	my $refused = () = $log =~ / refused /g;
	is($refused, 11, 'the agent\'s log records the eleven refusals');
	is(scalar(logged_notes()), 4, '... and the one extra signature');
}

# ---------------------------------------------------------------------
# 5. The agent down: a clear error, nothing stored.
# ---------------------------------------------------------------------
my $before = stored();
stop($agent);
ok(!-e $sock, 'the stopped agent removed its socket');
like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}),
	qr/ERROR:  08001: could not connect to the signing agent: No such file or directory\n.*HINT:  Check that the signing agent is running/s,
	'agent down: checkpoint() fails with 08001 and a hint');
like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_p2')}),
	qr/ERROR:  08001: could not connect to the signing agent/, 'agent down: purge_expired() fails with 08001');
like(sql_err(q{SELECT hipaa_audit.verifier_key()}),
	qr/ERROR:  08001: could not connect to the signing agent/, 'agent down: verifier_key() fails with 08001');
is(stored(), $before, 'nothing stored, no row purged');
unlike(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}), qr/\Q$sock\E/, 'the socket path is not shown to the client');
ok($node->log_contains(qr/DETAIL:  hipaa_audit\.signing_agent is "\Q$sock\E"/), '... it is in the server log');

# A stale socket left by a killed agent: refused connections.
{
	my $fake = start_fake($sock, 'close');
	stop($fake, 'KILL');
	ok(-S $sock, 'a killed agent leaves its socket behind');
	like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}),
		qr/ERROR:  08001: could not connect to the signing agent: Connection refused/,
		'stale socket: checkpoint() fails with 08001');
	is(stored(), $before, 'nothing stored');
}

# ---------------------------------------------------------------------
# 6. Agents that answer wrongly: clear errors, nothing stored.
# ---------------------------------------------------------------------
my $fsock = "$sockdir/fake.sock";
configure(agent => $fsock);
my $good_sig64 = encode_base64($keyid . ("\x07" x 64), '');
foreach my $case (
	[ 'garbage', "hello there\\n", qr/ERROR:  08P01: the signing agent's answer is malformed\nDETAIL:  The answer is neither "ok" nor "error"\./ ],
	[ 'unterminated', ('x' x 1500), qr/ERROR:  08P01: the signing agent's answer is malformed\nDETAIL:  The answer is longer than 1024 bytes\./ ],
	[ 'close', '', qr/ERROR:  08006: the signing agent closed the connection without an answer/ ],
	[ 'bad signature', "ok $vkey $good_sig64\\n", qr/ERROR:  08P01: the signing agent's signature does not verify/ ],
	[ 'bad key ID', 'ok ' . verifier_key_of('other.example', $pub) =~ s/\+[0-9a-f]{8}\+/+00000000+/r . " $good_sig64\\n",
		qr/ERROR:  08P01: the signing agent's answer is malformed\nDETAIL:  The agent's key ID does not match its name and key\./ ],
	[ 'other name', 'ok ' . verifier_key_of('other.example', $pub) . " $good_sig64\\n",
		qr/ERROR:  55000: the signing agent signs as "other.example", not as hipaa_audit.signer_name "audit.example.org"/ ],
	[ 'no signature', "ok $vkey\\n", qr/ERROR:  08P01: the signing agent's answer is malformed\nDETAIL:  The answer does not carry base64/ ],
	[ 'refusal', "error refused you may not\\n", qr/ERROR:  55000: the signing agent refused to sign the note\nDETAIL:  The agent answered: refused you may not/ ],
	[ 'control bytes', "ok \x01\\n", qr/ERROR:  08P01: the signing agent's answer is malformed\nDETAIL:  The answer contains a byte that is not printable ASCII\./ ])
{
	my ($what, $line, $re) = @$case;
	my $fake = start_fake($fsock, $what eq 'close' ? 'close' : 'answer', $line);
	like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}), $re, "agent answering $what: checkpoint() fails clearly");
	like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_p2')}),
		qr/ERROR:  (08P01|08006|55000): the signing agent/,
		"agent answering $what: purge_expired() fails (asking for the key, before removing a row)");
	is(stored(), $before, "agent answering $what: nothing stored");
	stop($fake);
}

# An agent that gives its key but signs wrongly: the purge has removed
# rows when the signature fails, and its transaction takes them back.
foreach my $case (
	[ 'bad signature', "ok $vkey $good_sig64\\n", qr/ERROR:  08P01: the signing agent's signature does not verify/ ],
	[ 'garbage', "hello there\\n", qr/ERROR:  08P01: the signing agent's answer is malformed/ ],
	[ 'refusal', "error refused not today\\n", qr/ERROR:  55000: the signing agent refused to sign the note/ ])
{
	my ($what, $line, $re) = @$case;
	my $fake = start_fake($fsock, 'answer', $line, "ok $vkey");
	is(sql('SELECT hipaa_audit.verifier_key()'), $vkey, "agent giving its key, signing with $what: verifier_key() works");
	like(sql_err(q{SELECT * FROM hipaa_audit.purge_expired('t_p2')}), $re,
		"... purge_expired() fails at the signature");
	is(stored(), $before, '... nothing stored, every row of t_p2 still there');
	stop($fake);
}

# ---------------------------------------------------------------------
# 7. A stalled agent: a cancel returns promptly; the wait times out.
# ---------------------------------------------------------------------
{
	my $fake = start_fake($fsock, 'stall');
	my ($out, $err) = ('', '');
	my $t0 = time;
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
		'-c', q{SELECT hipaa_audit.checkpoint('t1')} ], '<', \undef, '>', \$out, '2>', \$err);
	ok($node->poll_query_until('postgres',
			q{SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Extension' AND query LIKE '%checkpoint(%'}),
		'the backend waits on the stalled agent (wait event Extension)');
	my $tc = time;
	sql(q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Extension' AND query LIKE '%checkpoint(%'});
	$h->finish;
	my $took = time - $tc;
	like($err, qr/ERROR:  57014: canceling statement due to user request/, 'pg_cancel_backend() cancels the wait');
	ok($took < 3, sprintf('... promptly (%.2f s)', $took));
	is(stored(), $before, 'nothing stored');

	$t0 = time;
	like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}),
		qr/ERROR:  08006: the signing agent did not answer within 10 seconds/, 'without a cancel, the wait ends after 10 seconds');
	my $waited = time - $t0;
	ok($waited >= 9.5 && $waited < 30, sprintf('... (%.1f s)', $waited));
	is(stored(), $before, 'nothing stored');
	is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension'}), '0', 'no backend left waiting');
	stop($fake);
}

# ---------------------------------------------------------------------
# 8. Configuration: the agent allows only its peer; never key file and
#    agent together; the agent's name must be the signer name.
# ---------------------------------------------------------------------
openssl_ok('genpkey', '-algorithm', 'ed25519', '-out', $key);
chmod 0600, $key;
my $pub2 = raw_pub($key);
{
	my ($a2) = start_agent($key, $fsock, user => 0);
	like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}),
		qr/ERROR:  55000: the signing agent refused to sign the note\nDETAIL:  The agent answered: peer this account may not use the agent/,
		'an agent for another account (-u) refuses the server');
	like(slurp_file($agent_log), qr/ refused peer sha256=- peer_uid=$< /, '... and logs the refusal');
	is(stored(), $before, 'nothing stored');
	stop($a2);
}
($agent, $agent_pid) = start_agent($key, $sock, sysid => $sysid);
configure(agent => $sock, keyfile => $key);
like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}),
	qr/ERROR:  55000: both hipaa_audit.signing_key_file and hipaa_audit.signing_agent are set\n.*HINT:  Set hipaa_audit.signing_key_file to '' when using the signing agent/s,
	'key file and agent both set: refused with 55000');
like(sql_err(q{SELECT hipaa_audit.verifier_key()}), qr/ERROR:  55000: both /, '... verifier_key() too');
is(stored(), $before, 'nothing stored');

configure(agent => $sock, name => 'hipaa_audit');
like(sql_err(q{SELECT hipaa_audit.checkpoint('t1')}),
	qr/ERROR:  55000: the signing agent signs as "audit.example.org", not as hipaa_audit.signer_name "hipaa_audit"\n.*HINT:  Set hipaa_audit.signer_name to the agent's name/s,
	'an agent of another name than signer_name: refused');
is(stored(), $before, 'nothing stored');

# Back to a working agent: the purge that failed above now succeeds.
configure(agent => $sock);
my $vkey2 = verifier_key_of($name, $pub2);
is(sql('SELECT hipaa_audit.verifier_key()'), $vkey2, 'a restarted agent with a new key: verifier_key() follows');
my $r2 = pack('H*', sql(q{SELECT encode(convert_to(receipt, 'UTF8'), 'hex') FROM hipaa_audit.purge_expired('t_p2')}));
is(sql('SELECT ok::text || status FROM hipaa_audit.verify_receipt(' . note_sql($r2) . ', ' . lit($vkey2) . ')'),
	'trueok', 'the purge of t_p2 through the agent verifies');
is(stored(), '3/2/0/0', 'its receipt stored, t_p2 purged');
is(sql('SELECT ok::text || receipts FROM hipaa_audit.verify_receipt_chain()'), 'true2',
	'the stored receipts still link up');
stop($agent);

done_testing();
