# A short run of the API fuzzer (make fuzz runs it longer): random
# sequences of calls under AddressSanitizer and UBSan must not crash, and
# the DOF documents it made must pass the kernel's checks (t/lib/DOFReader).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my ($st, $out) = run_capture('make', '-C', top_dir(), 'fuzz', 'FUZZ_SECONDS=20');
is $st, 0, 'make fuzz FUZZ_SECONDS=20' or diag $out;
my ($runs) = $out =~ /^Done (\d+) runs/m;
cmp_ok $runs // 0, '>', 10000, "the fuzzer ran ${\ ($runs // 0)} inputs";
like $out, qr/^fuzz: (\d{3,}) DOF documents pass the kernel checks$/m, 'and its DOF documents pass';
done_testing;
