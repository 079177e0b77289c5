# errno: a library call that succeeds leaves errno as the caller had it
# (the library's own probing, such as access() on the DTrace helper
# device or a memfd flag an older kernel refuses, must not show through:
# bindings report errno after a call). t/progs/errno_kept.c sets errno to
# 4242 before each call of a whole provider life cycle and checks it after.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my $top = $ENV{USDT_TOP} // top_dir();
my $tmp = tempdir(CLEANUP => 1);
my ($st, $out) = run_capture('cc', '-O2', '-Wall', '-Wextra', '-Werror', "-I$top", '-o',
                             "$tmp/errno_kept", "$top/t/progs/errno_kept.c",
                             "$top/libusdt.a", '-lpthread');
is $st, 0, 'builds without warnings' or diag $out;
for my $backend (qw(auto sdt)) {
    ($st, $out) = run_capture('env', "USDT_BACKEND=$backend", "$tmp/errno_kept");
    is $out, "errno ok 14\n", "USDT_BACKEND=$backend: every successful call kept errno";
    is $st, 0, 'exit status 0';
}
done_testing;
