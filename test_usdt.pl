#!/usr/bin/perl
# The test suite's runner (what `make test` runs): every t/*.t through
# prove, with t/lib on the include path. Name test files to run only those:
#   perl test_usdt.pl t/40_bpftrace.t
# Needs root and the tracers that .ci/setup.sh installs; see README.md.
use strict;
use warnings;
use FindBin qw($Bin);

chdir $Bin or die "test_usdt.pl: cannot enter $Bin: $!\n";
die "test_usdt.pl: ./test_usdt is missing: run `make test`\n" unless -x './test_usdt';
exec 'prove', '-I', 't/lib', (@ARGV ? @ARGV : 't/')
    or die "test_usdt.pl: cannot run prove: $!\n";
