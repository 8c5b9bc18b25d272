# Helpers for the TAP suites that handle signed notes (checkpoints, purge
# receipts) and keys outside the database: OpenSSL, raw files, SQL literals,
# and the C2SP signed-note layout (docs/checkpoints.md).
package HaNote;

use strict;
use warnings;
use Digest::SHA qw(sha256);
use Exporter 'import';
use IPC::Run;
use MIME::Base64 qw(encode_base64 decode_base64);

our @EXPORT = qw($EMDASH run_openssl openssl_ok write_file read_raw raw_pub
  key_id verifier_key_of lit split_note);

# A signature line starts with U+2014 and a space (UTF-8 bytes).
our $EMDASH = "\xe2\x80\x94 ";

# Run openssl with no input: (ok, stdout, stderr).
sub run_openssl
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'openssl', @args ], '<', \'', '>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}

sub openssl_ok
{
	my ($ok, $out, $err) = run_openssl(@_);
	die "openssl @_ failed: $err" unless $ok;
	return $out;
}

sub write_file
{
	my ($path, $data, $mode) = @_;
	open(my $fh, '>:raw', $path) or die "$path: $!";
	print $fh $data;
	close $fh or die;
	chmod($mode, $path) or die if defined $mode;
}

sub read_raw
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "$path: $!";
	local $/;
	my $d = <$fh>;
	close $fh;
	return $d;
}

# Raw 32-byte public key of a private key file, by openssl alone.
sub raw_pub
{
	my ($pem) = @_;
	my $der = openssl_ok('pkey', '-in', $pem, '-pubout', '-outform', 'DER');
	die "unexpected public key DER" unless length $der == 44;
	return substr($der, 12);
}

# C2SP key ID: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || key).
sub key_id
{
	my ($name, $pub) = @_;
	return substr(sha256($name . "\n" . "\x01" . $pub), 0, 4);
}

sub verifier_key_of
{
	my ($name, $pub) = @_;
	return "$name+" . unpack('H*', key_id($name, $pub)) . '+'
	  . encode_base64("\x01" . $pub, '');
}

# A string as an SQL literal.
sub lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# Split a note into its body (with its final newline) and its signature
# lines, each [ name, decoded key ID and signature ].
sub split_note
{
	my ($note) = @_;
	$note =~ /\A(.*?\n)\n(.*)\z/s or die "no blank line in note: $note";
	my ($body, $sigs) = ($1, $2);
	my @sigs;
	for my $l (split /\n/, $sigs)
	{
		$l =~ /\A\Q$EMDASH\E(\S+) ([A-Za-z0-9+\/=]+)\z/ or die "bad signature line: $l";
		push @sigs, [ $1, decode_base64($2) ];
	}
	return ($body, \@sigs);
}

1;
