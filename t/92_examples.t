# The examples a newcomer copies from: each builds (make examples) and
# runs; hello, guarded and jit are traced by bpftrace, which sees every fire
# made once it was attached.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(bpftrace run_capture top_dir tracer_missing tracer_start tracer_stop tracer_wait);

my $top = top_dir();
my ($st, $out) = run_capture('make', '-C', $top, 'examples');
is $st, 0, 'make examples' or diag $out;

($st, $out) = run_capture("$top/examples/many", 50);
is $st, 0, 'many runs';
is $out, "many: 50 providers created, enabled, fired and freed\n";

SKIP: {
    my $why = tracer_missing('bpftrace');
    skip $why, 3 if $why;

    # hello fires tick number I (I = 1..N, one a second) while traced: once
    # bpftrace is ready, every tick up to the last is printed.
    subtest 'hello: bpftrace sees each tick from its attach to the last' => sub {
        my $seconds = 4;
        my $prog = tracer_start("$top/examples/hello", $seconds, { ready => qr/pid (\d+)/, timeout => 10 });
        my $bt = bpftrace('-p', $prog->{pid}, 'usdt::hello:tick { printf("%lld %s\n", arg0, str(arg1)); }');
        tracer_stop($prog, 'ZERO');     # waits until it exits by itself
        is $prog->{status}, 0, 'hello exits 0';
        ok tracer_wait($bt, qr/^$seconds tick number $seconds$/m), "bpftrace printed the last tick ($seconds)";
        my $trace = tracer_stop($bt);
        my @ticks = $trace =~ /^(\d+) tick number \1$/mg;
        ok @ticks >= 1, 'it saw ticks: ' . join(' ', @ticks) or diag $trace;
        is_deeply \@ticks, [ ($ticks[0] // 0) .. $seconds ], 'each tick once, in order, none missed';
    };

    # guarded builds and fires its argument only while traced, and says how
    # many times it did: bpftrace prints exactly that many.
    subtest 'guarded: bpftrace sees every fire it counts' => sub {
        my $prog = tracer_start("$top/examples/guarded", 4, { ready => qr/pid (\d+)/, timeout => 10 });
        my $bt = bpftrace('-p', $prog->{pid}, 'usdt::guarded:request { printf("%s\n", str(arg1)); }');
        my $prog_out = tracer_stop($prog, 'ZERO');
        is $prog->{status}, 0, 'guarded exits 0';
        my ($built) = $prog_out =~ /argument built and fired (\d+) times$/m;
        cmp_ok $built // 0, '>', 0, 'it fired while traced' or diag $prog_out;
        my $line = qr/^\{"iteration":\d+,"elapsed_ms":\d+,"pid":$prog->{pid}\}$/m;
        ok tracer_wait($bt, sub { my @seen = $_[0] =~ /$line/g; @seen >= $built }),
            "bpftrace printed $built lines";
        my $trace = tracer_stop($bt);
        my @lines = $trace =~ /$line/g;
        is scalar @lines, $built, 'one for each fire' or diag $trace;
    };

    # jit's generated code passes its probe site only while the semaphore
    # it tests inline is set, and the program says which calls did:
    # bpftrace prints exactly those, with the arguments left in registers.
    subtest 'jit: bpftrace sees every call that passed the JIT probe site' => sub {
        require POSIX;
        plan skip_all => 'the toy JIT emits x86_64 code' if (POSIX::uname())[4] ne 'x86_64';
        my $calls = 4;
        my $prog = tracer_start("$top/examples/jit", $calls, { ready => qr/pid (\d+)/, timeout => 10 });
        my $bt = bpftrace('-p', $prog->{pid}, 'usdt::jitdemo:tick { printf("%lld %lld\n", arg0, arg1); }');
        my $prog_out = tracer_stop($prog, 'ZERO');
        is $prog->{status}, 0, 'jit exits 0';
        my ($passed) = $prog_out =~ /^jit: $calls calls, (\d+) passed the probe site$/m;
        my @passed = $prog_out =~ /^jit: tick\((\d+, \d+)\) passed the probe site \(traced\)$/mg;
        cmp_ok $passed // 0, '>', 0, 'calls passed the site while traced' or diag $prog_out;
        is scalar @passed, $passed, 'and it said which';
        my $line = qr/^(\d+) (\d+)$/m;
        ok tracer_wait($bt, sub { my @seen = $_[0] =~ /$line/g; @seen >= 2 * ($passed // 0) }),
            "bpftrace printed $passed lines";
        my @seen = map { s/ /, /r } tracer_stop($bt) =~ /^(\d+ \d+)$/mg;
        is_deeply \@seen, \@passed, 'one for each call that passed, with its arguments';
    };
}
done_testing;
