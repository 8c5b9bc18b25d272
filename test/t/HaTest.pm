# Helpers shared by the TAP suites of hipaa_audit.
package HaTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Exporter 'import';

our @EXPORT = qw(ha_node ha_send_until ha_start_blocking ha_sqlstate_of);
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

1;
