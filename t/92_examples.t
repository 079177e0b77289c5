# The examples a newcomer copies from: each builds (make examples) and
# runs; hello and guarded are traced by bpftrace.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(bpftrace run_capture top_dir tracer_start tracer_stop);

my $top = top_dir();
my ($st, $out) = run_capture('make', '-C', $top, 'examples');
is $st, 0, 'make examples' or diag $out;

($st, $out) = run_capture("$top/examples/many", 50);
is $st, 0, 'many runs';
is $out, "many: 50 providers created, enabled, fired and freed\n";

for my $ex (['hello', 'usdt::hello:tick { printf("%lld %s\n", arg0, str(arg1)); }', qr/^(\d+) tick number \1$/m],
            ['guarded', 'usdt::guarded:request { printf("%s\n", str(arg1)); }', qr/^\{"iteration":\d+,"elapsed_ms":\d+,"pid":\d+\}$/m]) {
    my ($name, $script, $want) = @$ex;
    my $prog = tracer_start("$top/examples/$name", 4, { ready => qr/pid (\d+)/, timeout => 10 });
    my $bt = bpftrace('-p', $prog->{pid}, $script);
    my $prog_out = tracer_stop($prog, 'ZERO');     # waits until it exits by itself
    like tracer_stop($bt), $want, "$name: bpftrace sees its probe fire";
    is $prog->{status}, 0, "$name exits 0";
}
done_testing;
