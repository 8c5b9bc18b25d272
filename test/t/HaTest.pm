# Helpers shared by the TAP suites of hipaa_audit.
package HaTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use Exporter 'import';

our @EXPORT = qw(ha_node);

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

1;
