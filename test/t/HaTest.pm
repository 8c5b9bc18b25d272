# Helpers shared by the TAP suites of hipaa_audit.
package HaTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Exporter 'import';
use Cwd ();

our @EXPORT = qw(ha_node ha_send_until ha_start_blocking ha_sqlstate_of ha_result_of
  ha_check_chains ha_timeout ha_pg_upgrade ha_children_of ha_alive);
use PostgreSQL::Test::Utils;

# A new cluster with hipaa_audit preloaded (unless preload => 0), started,
# and the extension created in database postgres.
sub ha_node
{
	my ($name, %opt) = @_;
	my $preload = exists $opt{preload} ? $opt{preload} : 1;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opt{init} || {} });
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'hipaa_audit'\n") if $preload;
	$node->append_conf('postgresql.conf', $opt{conf}) if $opt{conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION hipaa_audit')
	  if $preload && !$opt{no_extension};
	return $node;
}

# Send input to a background_psql session and read its output until a
# pattern appears, leaving the output in place.
sub ha_send_until
{
	my ($s, $input, $re) = @_;
	$s->{stdin} .= $input;
	pump_until($s->{run}, $s->{timeout}, \$s->{stdout}, $re)
	  or die "timed out waiting for $re; stdout: $s->{stdout}; stderr: $s->{stderr}";
}

# Start a statement that will block, with a marker line before it and a
# marker "<tag>=<SQLSTATE>" after it; return once the statement was sent.
sub ha_start_blocking
{
	my ($s, $tag, $sql) = @_;
	ha_send_until($s, "\\echo $tag-sent\n$sql;\n\\echo $tag=:SQLSTATE\n",
		qr/$tag-sent\n/);
}

# Wait for the statement started by ha_start_blocking to end: its SQLSTATE.
sub ha_sqlstate_of
{
	my ($s, $tag) = @_;
	ha_send_until($s, '', qr/$tag=\w+\n/);
	my $state = $s->{stdout} =~ /$tag=(\w+)/ ? $1 : 'none';
	$s->{stdout} = '';
	return $state;
}

# The output and the SQLSTATE of the statement started by
# ha_start_blocking, once it has ended.
sub ha_result_of
{
	my ($s, $tag) = @_;
	ha_send_until($s, '', qr/$tag=\w+\n/);
	my $out = $s->{stdout};
	$s->{stdout} = '';
	$out =~ s/\A.*?$tag-sent\n//s;
	my ($res, $state) = $out =~ /\A(.*?)\n?$tag=(\w+)\n/s;
	return ($res // '', $state // 'none');
}

# Processes whose parent is the given PID (from /proc).
sub ha_children_of
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or return ();
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close $fh;
		push @kids, $pid if $stat && $stat =~ /\) \S+ (\d+) / && $1 == $ppid;
	}
	closedir $dh;
	return @kids;
}

# Does a process still exist?  A zombie counts only if asked: a zombie
# postmaster still blocks a new start, its PID being in the lock file.
sub ha_alive
{
	my ($pid, $zombie_counts) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close $fh;
	return 0 unless $stat && $stat =~ /\) (\S+) /;
	return $zombie_counts || $1 ne 'Z';
}

# How long to wait for anything: PostgreSQL's own test timeout
# (PG_TEST_TIMEOUT_DEFAULT, 180 s unless set), times a factor.
sub ha_timeout
{
	my ($factor) = @_;
	return $PostgreSQL::Test::Utils::timeout_default * ($factor // 1);
}

# Every chain invariant of a table in plain SQL, independent of verify()
# (no shared position, positions exactly 1..max, each row linked to its
# predecessor, chain numbers in range), then verify() and verify_problems()
# over every row.
sub ha_check_chains
{
	my ($node, $tbl, $nchains, $what) = @_;
	Test::More::is($node->safe_psql('postgres', qq{
		SELECT count(*) FROM (SELECT audit_chain, audit_seq FROM $tbl
		                       GROUP BY 1, 2 HAVING count(*) > 1) d}),
		'0', "$what: $tbl: no two rows share (audit_chain, audit_seq)");
	Test::More::is($node->safe_psql('postgres', qq{
		SELECT count(*) FROM (SELECT audit_chain FROM $tbl GROUP BY 1
		                       HAVING min(audit_seq) <> 1 OR max(audit_seq) <> count(*)) h}),
		'0', "$what: $tbl: positions of every chain are exactly 1..max (no hole)");
	Test::More::is($node->safe_psql('postgres', qq{
		SELECT count(*) FROM (
		  SELECT audit_prev_hash,
		         coalesce(lag(audit_hash) OVER (PARTITION BY audit_chain ORDER BY audit_seq),
		                  decode(repeat('00', 32), 'hex')) AS expect
		    FROM $tbl) l
		 WHERE audit_prev_hash IS DISTINCT FROM expect}),
		'0', "$what: $tbl: every row links to its predecessor's hash");
	Test::More::is($node->safe_psql('postgres', qq{
		SELECT count(*) FROM $tbl WHERE audit_chain NOT BETWEEN 0 AND $nchains - 1}),
		'0', "$what: $tbl: chain numbers within 0..@{[$nchains - 1]}");
	my $rows = $node->safe_psql('postgres', "SELECT count(*) FROM $tbl");
	Test::More::is($node->safe_psql('postgres',
			"SELECT ok, rows_checked, problems, first_problem FROM hipaa_audit.verify('$tbl')"),
		"t|$rows|0|", "$what: $tbl: verify() ok over all $rows rows");
	Test::More::is($node->safe_psql('postgres',
			"SELECT count(*) FROM hipaa_audit.verify_problems('$tbl')"),
		'0', "$what: $tbl: verify_problems() empty");
}

# pg_upgrade from the stopped cluster $old (its binaries in $oldbin) to
# the new, not yet started cluster $new, as one test named $what; from a
# directory the test owns, since pg_upgrade works in the current one.
sub ha_pg_upgrade
{
	my ($old, $oldbin, $new, $what) = @_;
	my $cwd = Cwd::getcwd();
	chdir PostgreSQL::Test::Utils::tempdir or die;
	PostgreSQL::Test::Utils::command_ok(
		[
			'pg_upgrade', '--no-sync',
			'-d', $old->data_dir, '-D', $new->data_dir,
			'-b', $oldbin, '-B', $new->config_data('--bindir'),
			'-s', $new->host, '-p', $old->port, '-P', $new->port
		],
		$what);
	chdir $cwd or die;
}

1;
