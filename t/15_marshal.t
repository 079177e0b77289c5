# The argument marshaller: 0 to 32 distinct values land where a compiled-in
# probe's arguments would be at its site (registers, then the stack), and
# every callee-saved register and the stack pointer come back unchanged.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(driver);

my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
for my $argc (0 .. 32) {
    my $want = join ' ', map { sprintf '%x', 0x1000 + $_ * 0x11 } 0 .. $argc - 1;
    is $d->cmd("marshal $argc"), "marshal $argc preserved yes args" . ($argc ? " $want" : ''),
        "$argc arguments";
}
is $d->close, 0;
done_testing;
