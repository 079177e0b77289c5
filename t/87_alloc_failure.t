# Every allocation, mapping, write and load the library makes can fail:
# a driver whose library calls go through t/failalloc.c fails the Nth one,
# for N = 1 up to the number the sequence makes, in memory-file and file
# mode. Each run must end cleanly: no crash, no leak (LeakSanitizer), no
# descriptor left open, a clear error for the call that failed, and the
# same call succeeding when tried again.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my $top = top_dir();
my ($st, $out) = run_capture('make', '-s', '-C', $top, 'build/failalloc/test_usdt');
is $st, 0, 'the failure-injection driver builds' or diag $out;
my $drv = "$top/build/failalloc/test_usdt";

# The sequence. A step whose one injected failure hit must fail with an
# error text, and succeed when tried again at once.
my @steps = ('provider p prov mod', 'probe a fn one int str', 'probe b fn two',
             'add p a', 'add p b', 'enable p', 'dof p DOF', 'disable p', 'enable p',
             'remove p b', 'disable p', 'enable p', 'dof p DOF', 'free p', 'release a',
             'release b', 'release b');
my $retry = qr/^(provider|probe|add|enable|dof) /;

# Runs the sequence failing call $n (0: none); returns (problem or undef,
# number of failable calls made).
sub run_with {
    my ($n, $dir) = @_;
    my $tmp = tempdir(CLEANUP => 1);
    local $ENV{ASAN_OPTIONS} = 'detect_leaks=1';
    my $d = USDTTest::driver(_exe => $drv, USDT_SDT_DIR => $dir);
    my $start = $d->cmd('counts');
    $d->ok_all("failat $n");
    my $problem;
    for my $s (@steps) {
        (my $line = $s) =~ s/DOF/$tmp\/x.dof/;
        my $answer = $d->cmd($line);
        next if $answer =~ /^ok/;
        $problem //= "'$line' failed without saying why: $answer"
            if $answer =~ /^error (EINVAL|ENOMEM)?\s*$/ && $line !~ /^probe /;
        $problem //= "'$line' failed ($answer) where it cannot fail" if $line !~ $retry;
        my $again = $d->cmd($line);
        $problem //= "'$line' failed ($answer), and again ($again)" if $again !~ /^ok/;
    }
    my ($calls) = $d->cmd('failcalls') =~ /^calls (\d+)/;
    my $end = $d->cmd('counts');
    my ($fds0) = $start =~ /^(fds \d+)/;
    my ($fds1) = $end =~ /^(fds \d+)/;
    $problem //= "descriptors: $fds0 before, $fds1 after" if $fds0 ne $fds1;
    my $status = $d->close;
    $problem //= "exit status $status (a sanitizer report?)" if $status != 0;
    return ($problem, $calls);
}

for my $mode ('memory file', 'file mode') {
    my $dir = $mode eq 'file mode' ? tempdir(CLEANUP => 1) . '/objects' : undef;
    my ($problem0, $calls) = run_with(0, $dir);
    is $problem0, undef, "$mode: the sequence runs without failures";
    cmp_ok $calls, '>', 20, "$mode: it makes $calls failable calls";
    my @bad;
    for my $n (1 .. $calls) {
        my ($problem) = run_with($n, $dir);
        push @bad, "failing call $n: $problem" if $problem;
    }
    is_deeply \@bad, [], "$mode: failing each of the $calls calls in turn ends cleanly";
}
done_testing;
