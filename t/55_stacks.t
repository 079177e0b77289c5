# Stack traces at a probe, as people take them: a program built with frame
# pointers and -g (t/progs/stack_app.c) whose main calls app_loop, which
# calls app_handler, which fires unguarded. gdb's bt at the probe (DWARF
# unwinding through the stub's .eh_frame and the marshaller's CFI),
# bpftrace's ustack (frame pointers, in the kernel) and perf record
# --call-graph dwarf (file mode) each show app_handler, app_loop and main,
# in that order, under the stub.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use lib 't/lib';
use USDTTest qw(bpftrace driver run_capture top_dir tracer_start tracer_stop);

my $arch = (POSIX::uname())[4];
plan skip_all => "stack tests run on x86_64; this machine is $arch" if $arch ne 'x86_64';

my $top = $ENV{USDT_TOP} // top_dir();
my $tmp = tempdir(CLEANUP => 1);
my ($st, $out) = run_capture('cc', '-O2', '-g', '-fno-omit-frame-pointer', '-Wall', '-Wextra',
                             '-Werror', "-I$top", '-o', "$tmp/stack_app",
                             "$top/t/progs/stack_app.c", "$top/libusdt.a", '-lpthread');
is $st, 0, 'the app builds with frame pointers and -g' or diag $out;

# The frames' function names, innermost first, from lines that name them.
sub callers_in {
    my ($text, @want) = @_;
    my $at = 0;
    for my $fn (@want) {
        my $i = index $text, $fn, $at;
        return "missing $fn after offset $at" if $i < 0;
        $at = $i + length $fn;
    }
    return 'in order';
}

sub semaphore_becomes {
    my ($d, $want) = @_;
    my $deadline = time + 60;
    my $got;
    while (($got = $d->cmd('sem')) ne "sem $want" && time < $deadline) {
        select undef, undef, undef, 0.05;
    }
    return $got;
}

subtest 'gdb: bt at the probe shows app_handler, app_loop, main' => sub {
    my $d = driver(_exe => "$tmp/stack_app");
    my ($pid) = $d->cmd('pid') =~ /^pid (\d+)$/;
    my $g = tracer_start('gdb', '-batch', '-nx', '-p', $pid, '-ex', 'break -probe-stap stk:hit',
                         '-ex', 'continue', '-ex', 'bt', '-ex', 'detach');
    is semaphore_becomes($d, 1), 'sem 1', 'gdb set its breakpoint';
    is $d->cmd('fire'), 'fired', 'the fire returns once gdb detached';
    my $text = tracer_stop($g, 'ZERO');
    my ($bt) = $text =~ /(^#0 .*?)(?=^\S*Detaching|\z)/ms;
    $bt //= $text;
    like $bt, qr/^#0 .* in stk_handler_hit \(\)/m, 'frame 0 is the stub, named';
    is callers_in($bt, 'usdt_probe_args', 'app_handler', 'app_loop', 'main'), 'in order',
        'then the marshaller and every caller' or diag $text;
    unlike $text, qr/corrupt stack|inner to this frame|Backtrace stopped/, 'no broken unwind';
    is $d->close, 0, 'the app exits cleanly';
};

# In file mode: bpftrace 0.17 prints nothing at all for a ustack map now
# and then (1 to 3 runs in 10 here) when a stack passes through a memory
# file (/memfd:... (deleted) in maps); with the object in a real file it
# prints every time. The README says so.
subtest 'bpftrace: ustack at the probe shows app_handler, app_loop, main' => sub {
    my $d = driver(_exe => "$tmp/stack_app", USDT_SDT_DIR => "$tmp/bt-objects");
    my ($pid) = $d->cmd('pid') =~ /^pid (\d+)$/;
    my $bt = bpftrace('-p', $pid, 'usdt::stk:hit { @[ustack] = count(); }');
    is $d->cmd('fire'), 'fired';
    my $text = tracer_stop($bt);
    like $text, qr/^\s+stk_handler_hit\+\d+$/m, 'the stub, named';
    is callers_in($text, 'stk_handler_hit', 'app_handler', 'app_loop', 'main'), 'in order',
        'then every caller of the fire, the firing function included' or diag $text;
    like $text, qr/^\]: 1$/m, 'one stack, counted once';
    is $d->close, 0, 'the app exits cleanly';
};

subtest 'perf record --call-graph dwarf (file mode) shows app_handler, app_loop, main' => sub {
    my $dir = "$tmp/objects";
    my @perf = ('perf', '--buildid-dir', "$tmp/buildid");
    my $d = driver(_exe => "$tmp/stack_app", USDT_SDT_DIR => $dir);
    my ($pid) = $d->cmd('pid') =~ /^pid (\d+)$/;
    my ($path) = $d->cmd('path') =~ /^path (\S+)$/;
    my ($pst, $pout) = run_capture(@perf, 'buildid-cache', '--add', $path);
    is $pst, 0, 'perf buildid-cache --add' or diag $pout;
    ($pst, $pout) = run_capture(@perf, 'probe', '-x', $path, '-a', 'sdt_stk:hit');
    is $pst, 0, 'perf probe sdt_stk:hit' or diag $pout;
    my $data = "$tmp/perf.data";
    POSIX::mkfifo("$tmp/ctl", 0600) and POSIX::mkfifo("$tmp/ack", 0600) or die "mkfifo: $!";
    my $rec = tracer_start(@perf, 'record', '-N', '-D', '-1', '--control', "fifo:$tmp/ctl,$tmp/ack",
                           '-e', 'sdt_stk:hit', '--call-graph', 'dwarf', '-p', $pid, '-o', $data);
    open my $ctl, '>', "$tmp/ctl" or die "ctl fifo: $!";
    open my $ack, '<', "$tmp/ack" or die "ack fifo: $!";
    $ctl->autoflush(1);
    print $ctl "enable\n";
    is scalar(<$ack>), "ack\n", 'perf record enabled its event';
    is $d->cmd('fire'), 'fired';
    my $recorded = tracer_stop($rec);
    like $recorded, qr/\(1 samples\)/, 'one sample' or diag $recorded;
    ($pst, $pout) = run_capture(@perf, 'script', '-i', $data);
    is $pst, 0, 'perf script';
    like $pout, qr/ stk_handler_hit\+0x[0-9a-f]+ \(\Q$path\E\)$/m, 'the stub, named, in its file';
    is callers_in($pout, 'stk_handler_hit', 'app_handler', 'app_loop', 'main'), 'in order',
        'then every caller' or diag $pout;
    run_capture(@perf, 'probe', '-q', '-d', 'sdt_stk:*');
    is $d->close, 0, 'the app exits cleanly';
};

done_testing;
