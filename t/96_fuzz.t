# A short run of the API fuzzer (make fuzz runs it longer): random
# sequences of calls under AddressSanitizer and UBSan must not crash or
# give an answer the API never gives (the target aborts then), and the DOF
# documents it made must pass the kernel's checks (t/lib/DOFReader). The
# run is judged by what it checked, as the target reports it at exit, not
# by how fast it went: a busy machine runs fewer inputs, not worse ones.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my ($st, $out) = run_capture('make', '-C', top_dir(), 'fuzz', 'FUZZ_SECONDS=20');
is $st, 0, 'make fuzz FUZZ_SECONDS=20: no crash, no sanitizer report, no abort' or diag $out;
my ($runs) = $out =~ /^Done (\d+) runs/m;
cmp_ok $runs // 0, '>', 0, 'libFuzzer ran to its time limit and said how many inputs';
my %did;
if ($out =~ /^fuzz-target: (\d+) inputs, (\d+) probes created, (\d+) with more than 32 arguments refused, (\d+) providers enabled, (\d+) fires, (\d+) DOF documents checked, (\d+) written$/m) {
    @did{qw(inputs created refused enabled fires checked written)} = ($1, $2, $3, $4, $5, $6, $7);
}
# (libFuzzer may run an input again, uncounted, to look for a leak)
cmp_ok $did{inputs} // 0, '>=', $runs // 1, 'the target reports what it did over every input' or diag $out;
my %what = (created => 'probes created', refused => 'probes with more than 32 arguments refused',
            enabled => 'providers enabled', fires => 'fires', checked => 'DOF documents checked',
            written => 'DOF documents written for the reader');
cmp_ok $did{$_} // 0, '>', 0, "$what{$_}: " . ($did{$_} // 'none') for sort keys %what;
like $out, qr/^fuzz: \Q@{[ $did{written} \/\/ -1 ]}\E DOF documents pass the kernel checks$/m,
    'every DOF document it wrote passes the kernel checks';
done_testing;
