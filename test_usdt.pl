#!/usr/bin/perl
# The test suite's runner (what `make test` runs): every t/*.t through
# TAP::Harness (what prove runs), with t/lib on the include path. Name test
# files to run only those:
#   perl test_usdt.pl t/40_bpftrace.t
# Needs root and the tracers that .ci/setup.sh installs; see README.md.
#
# Every skip is listed at the end with its reason: a whole file skipped
# (skip_all) and each skipped test. Under CI=true (.ci/run) any skip fails
# the run, even when every test that ran passed: CI runs the whole suite,
# every tracer test included, and a skip there means something is missing.
use strict;
use warnings;
use FindBin qw($Bin);
use TAP::Harness;

chdir $Bin or die "test_usdt.pl: cannot enter $Bin: $!\n";
die "test_usdt.pl: ./test_usdt is missing: run `make test`\n" unless -x './test_usdt';
my @files = @ARGV ? @ARGV : sort glob 't/*.t';
die "test_usdt.pl: no test files\n" unless @files;
my $ci = ($ENV{CI} // '') eq 'true';

my @skips;      # "FILE: what was skipped: why"
my $harness = TAP::Harness->new({
    lib => ['t/lib'],
    verbosity => 0,
    color => -t STDOUT,
    callbacks => {
        # each skipped test, with the reason it gives
        parser_args => sub {
            my ($args, $job) = @_;
            my $file = $job->[0];
            $args->{callbacks} = {
                test => sub {
                    my ($result) = @_;
                    return unless $result->has_skip;
                    my $name = $result->description ? ' (' . $result->description . ')' : '';
                    push @skips, "$file: test " . $result->number . "$name skipped: " . $result->explanation;
                },
            };
        },
        # a file skipped as a whole
        after_test => sub {
            my ($job, $parser) = @_;
            push @skips, "$job->[0]: the whole file skipped: " . $parser->skip_all
                if defined $parser->skip_all;
        },
    },
});
my $aggregate = $harness->runtests(@files);

if (@skips) {
    print "\nSkipped:\n", map { "  $_\n" } @skips;
    print "test_usdt.pl: CI=true: ", scalar(@skips), " skip(s) above; in CI every test must run: FAIL\n"
        if $ci;
}
exit($aggregate->all_passed && !($ci && @skips) ? 0 : 1);
