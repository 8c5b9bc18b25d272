# A crash in the middle of a concurrent insert load loses no acknowledged
# commit and leaves every chain intact: several clients insert into two
# protected tables in the same transactions; the postmaster is killed with
# SIGKILL while they run; after the restart every acknowledged commit is in
# both tables, verify() is ok, and new rows continue each chain at the next
# position (the chain heads are rebuilt from the tables).  Three rounds, then
# one in which the postmaster and all its processes are killed at once (no
# backend gets to write anything more, as in a power cut that keeps the OS
# cache), then one in which a single backend is killed and the postmaster
# reinitializes shared memory itself (restart_after_crash).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);
use HaTest;

my $node = ha_node('crash', conf => "log_statement = none\nrestart_after_crash = on\n");
my $tmp = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', q{
	CREATE TABLE t1 (round int NOT NULL, client int NOT NULL, n int NOT NULL, payload text NOT NULL);
	CREATE TABLE t2 (round int NOT NULL, client int NOT NULL, n int NOT NULL, note text NOT NULL);
	CREATE INDEX ON t1 (round, client, n);
	CREATE INDEX ON t2 (round, client, n);
	SELECT hipaa_audit.protect('t1', chains => 4);
	SELECT hipaa_audit.protect('t2', chains => 2);
});
my %nchains = (t1 => 4, t2 => 2);

my $nclients = 6;
my $ntx = 20000;          # far more than a client commits before the kill
my $load_seconds = 2;

# One script for every client and round (psql variables :round, :client):
# sequential transactions, each followed by "ack <n>", which psql prints
# only once the COMMIT has been acknowledged (ON_ERROR_STOP stops it at the
# first error, e.g. the lost connection).
my $script = "$tmp/load.sql";
{
	open(my $fh, '>', $script) or die "$script: $!";
	for my $i (1 .. $ntx)
	{
		print $fh "BEGIN;\n",
		  "INSERT INTO t1 (round, client, n, payload) VALUES (:round, :client, $i, 'load');\n",
		  "INSERT INTO t2 (round, client, n, note) VALUES (:round, :client, $i, 'load');\n",
		  "COMMIT;\n\\echo ack $i\n";
	}
	close $fh or die;
}



# Start the load: one psql per client, in the background.
sub start_load
{
	my ($round) = @_;
	my @clients;
	for my $c (1 .. $nclients)
	{
		my %cl = (out => '', err => '');
		$cl{timer} = IPC::Run::timeout(ha_timeout());
		$cl{h} = IPC::Run::start(
			[
				$node->installed_command('psql'), '-X', '-q',
				'-v', 'ON_ERROR_STOP=1', '-v', "round=$round", '-v', "client=$c",
				'-d', $node->connstr('postgres'), '-f', $script
			],
			'<', \undef, '>', \$cl{out}, '2>', \$cl{err}, $cl{timer});
		push @clients, \%cl;
	}
	return @clients;
}

# Kill the postmaster (or, with $mode 'backend', one backend) with SIGKILL
# in the middle of the load, wait for the clients and every old server
# process to go, restart.  Returns, per client, the number of acknowledged
# commits.
sub crash_during_load
{
	my ($round, $mode) = @_;
	my @clients = start_load($round);
	my $t0 = time;

	# Let the load run; make sure every client has committed something.
	while (1)
	{
		$_->{h}->pump_nb for @clients;
		my $busy = $node->safe_psql('postgres',
			"SELECT count(DISTINCT client) FROM t1 WHERE round = $round");
		last if $busy == $nclients && time - $t0 >= $load_seconds;
		die "load of round $round did not start" if time - $t0 > ha_timeout();
		usleep(100_000);
	}

	my $pidfile = $node->data_dir . '/postmaster.pid';
	my $pm = (split /\n/, PostgreSQL::Test::Utils::slurp_file($pidfile))[0];
	my @old = ha_children_of($pm);
	my $log_offset = -s $node->logfile;
	if ($mode eq 'backend')
	{
		my $victim = $node->safe_psql('postgres', q{
			SELECT pid FROM pg_stat_activity
			 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
			 ORDER BY pid LIMIT 1});
		note sprintf('round %d: killing backend %d after %.1f s of load',
			$round, $victim, time - $t0);
		kill 9, $victim;
	}
	elsif ($mode eq 'all')
	{
		note sprintf('round %d: killing postmaster %d and its %d children at once after %.1f s of load',
			$round, $pm, scalar @old, time - $t0);
		kill 'STOP', $pm;    # no new children from here on
		@old = ha_children_of($pm);
		kill 9, @old;
		kill 'CONT', $pm;
		$node->kill9;
	}
	else
	{
		note sprintf('round %d: killing postmaster %d (%d children) after %.1f s of load',
			$round, $pm, scalar @old, time - $t0);
		$node->kill9;
	}

	# The clients end when their (orphaned) backends notice the postmaster
	# is gone.
	my @acked;
	my $running = 0;
	for my $cl (@clients)
	{
		eval { $cl->{h}->finish; 1 } or do
		{
			note "client did not end: $@";
			$cl->{h}->kill_kill;
		};
		my @acks = $cl->{out} =~ /^ack (\d+)$/mg;
		my $k = scalar @acks;
		my $seq_ok = !grep { $acks[$_] != $_ + 1 } 0 .. $#acks;
		ok($seq_ok, "round $round: client acks are 1..$k in order");
		$running++ if $k < $ntx;
		like($cl->{err}, qr/connection|terminat|server closed/i,
			"round $round: client lost its connection in the crash");
		push @acked, $k;
	}
	note "round $round: acknowledged commits per client: @acked";
	is($running, $nclients, "round $round: every client was still running at the crash");
	ok(!grep({ $_ == 0 } @acked), "round $round: every client had acknowledged commits");

	if ($mode eq 'backend')
	{
		# The postmaster itself kills the other backends, reinitializes
		# shared memory and runs crash recovery.
		ok($node->poll_query_until('postgres', 'SELECT true'),
			"round $round: server is back after reinitializing");
		ok($node->log_contains(qr/all server processes terminated; reinitializing/, $log_offset),
			"round $round: the postmaster reinitialized shared memory");
		return @acked;
	}

	# Wait for the old postmaster (even as a zombie, its PID blocks a new
	# start) and its children to be gone, then restart.
	my $deadline = time + ha_timeout();
	usleep(50_000)
	  while (ha_alive($pm, 1) || grep { ha_alive($_, 0) } @old) && time < $deadline;
	my $started = 0;
	until (($started = $node->start(fail_ok => 1)) || time > $deadline)
	{
		usleep(500_000);
	}
	die "node did not restart after round $round" unless $started;
	return @acked;
}

# After a restart: every acknowledged commit is in both tables, and each
# client's rows are exactly 1..m, with m = acked or acked + 1 (the commit in
# flight may have made it without being acknowledged).
sub check_round
{
	my ($round, @acked) = @_;
	for my $tbl ('t1', 't2')
	{
		my %have;
		for my $line (split /\n/, $node->safe_psql('postgres', qq{
			SELECT client, count(*), count(DISTINCT n), min(n), max(n),
			       count(*) FILTER (WHERE n <= 0)
			  FROM $tbl WHERE round = $round AND client BETWEEN 1 AND $nclients
			 GROUP BY client}))
		{
			my ($c, @v) = split /\|/, $line;
			$have{$c} = \@v;
		}
		my (@lost, @bad);
		my $unacked = 0;
		for my $c (1 .. $nclients)
		{
			my $k = $acked[ $c - 1 ];
			my ($cnt, $distinct, $min, $max) = @{ $have{$c} || [ 0, 0, 0, 0 ] };
			my $present = $node->safe_psql('postgres', qq{
				SELECT count(DISTINCT n) FROM $tbl
				 WHERE round = $round AND client = $c AND n BETWEEN 1 AND $k});
			push @lost, "client $c: acked $k, present $present" if $present != $k;
			$unacked++ if $cnt == $k + 1;
			push @bad, "client $c: acked $k, rows $cnt, distinct $distinct, n $min..$max"
			  unless $cnt == $distinct
			  && ($cnt == 0 || $min == 1)
			  && $max == $cnt
			  && ($cnt == $k || $cnt == $k + 1);
		}
		note "round $round: $tbl: $unacked client(s) had a commit in flight that made it unacknowledged";
		ok(!@lost, "round $round: $tbl: every acknowledged commit survived the crash")
		  or diag join("\n", @lost);
		ok(!@bad, "round $round: $tbl: each client's rows are exactly 1..acked(+1 in flight)")
		  or diag join("\n", @bad);
	}
	is($node->safe_psql('postgres', q{
		SELECT count(*) FROM (
		  (SELECT round, client, n FROM t1 WHERE client < 100
		   EXCEPT ALL SELECT round, client, n FROM t2 WHERE client < 100)
		  UNION ALL
		  (SELECT round, client, n FROM t2 WHERE client < 100
		   EXCEPT ALL SELECT round, client, n FROM t1 WHERE client < 100)) x}),
		'0', "round $round: t1 and t2 hold the same (round, client, n) rows");
	ha_check_chains($node, $_, $nchains{$_}, "round $round after restart") for 't1', 't2';
}

# New writers after the restart: as many concurrent transactions as t1 has
# chains, so each takes a different chain and every head is rebuilt from the
# table; the first ones also write t2.  Each new row must sit right after the
# last row of its chain.
sub check_continuation
{
	my ($round) = @_;
	my %before;
	for my $tbl ('t1', 't2')
	{
		for my $line (split /\n/, $node->safe_psql('postgres',
			"SELECT audit_chain, max(audit_seq) FROM $tbl GROUP BY 1"))
		{
			my ($c, $m) = split /\|/, $line;
			$before{$tbl}{$c} = $m;
		}
	}
	my @s = map { $node->background_psql('postgres', timeout => ha_timeout()) } 1 .. $nchains{t1};
	my (%got, @wrong);
	for my $k (0 .. $#s)
	{
		my @tbls = $k < $nchains{t2} ? ('t1', 't2') : ('t1');
		$s[$k]->query_safe('BEGIN');
		for my $tbl (@tbls)
		{
			my ($chain, $seq) = split /\|/, $s[$k]->query_safe(
				"INSERT INTO $tbl (round, client, n, "
				  . ($tbl eq 't1' ? 'payload' : 'note')
				  . ") VALUES ($round, 100 + $k, 1, 'after restart') RETURNING audit_chain, audit_seq");
			$got{$tbl}{$chain}++;
			my $expect = ($before{$tbl}{$chain} // 0) + 1;
			push @wrong, "$tbl chain $chain: got position $seq, expected $expect"
			  if $seq != $expect;
		}
	}
	$_->query_safe('COMMIT') for @s;
	$_->quit for @s;
	is(scalar keys %{ $got{t1} }, $nchains{t1},
		"round $round: concurrent new writers took every chain of t1");
	is(scalar keys %{ $got{t2} }, $nchains{t2},
		"round $round: concurrent new writers took every chain of t2");
	ok(!@wrong, "round $round: each new row continues its chain at max + 1")
	  or diag join("\n", @wrong);
	ha_check_chains($node, $_, $nchains{$_}, "round $round after new inserts") for 't1', 't2';
}

my @modes = ('postmaster', 'postmaster', 'postmaster', 'all', 'backend');
for my $round (1 .. @modes)
{
	my $t0 = time;
	my @acked = crash_during_load($round, $modes[ $round - 1 ]);
	check_round($round, @acked);
	check_continuation($round);
	note sprintf('round %d took %.1f s', $round, time - $t0);
}

note 'rows: ' . $node->safe_psql('postgres',
	"SELECT (SELECT count(*) FROM t1) || ' in t1, ' || (SELECT count(*) FROM t2) || ' in t2'");
$node->stop;
done_testing();
