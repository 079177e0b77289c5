# The driver-based tests again, with the driver built under
# AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer:
# `make asan` and `make ubsan`. Any report aborts the driver and fails.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

for my $target ('asan', 'ubsan') {
    my ($st, $out) = run_capture('make', '-s', '-C', top_dir(), $target);
    is $st, 0, "make $target passes the driver-based suite" or diag $out;
    like $out, qr/^Result: PASS$/m, "$target: prove says PASS";
    unlike $out, qr/^\S+\.t \.+ skipped:/m, "$target: no test file skipped itself";
}
done_testing;
