# gdb attached to the driver: `info probes stap` lists the providers, and a
# breakpoint on a probe reads back all 12 arguments of a 12-argument probe.
# With bpftrace and gdb on one probe at once, the kernel's semaphore counts
# 2, and usdt_is_enabled still answers exactly 1.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(bpftrace driver gdb semaphore_address tracer_stop tracer_wait);

USDTTest::needs_tracers('gdb', 'bpftrace');
my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
my ($pid) = $d->cmd('pid') =~ /(\d+)/;

$d->ok_all('provider g1 gdbprov mod', 'provider g2 other-prov mod',
           'probe t fn twelve int int int int int int int int int int int str',
           'probe o fn one-more int', 'add g1 t', 'add g2 o', 'enable g1', 'enable g2');
my ($path1) = $d->cmd('path g1') =~ /^path (\S+)/;
my ($path2) = $d->cmd('path g2') =~ /^path (\S+)/;

subtest 'info probes stap lists each provider' => sub {
    my $g = gdb('-p', $pid, '-ex', 'info probes stap');
    my $out = tracer_stop($g, 'ZERO');      # waits until gdb exits by itself
    is $g->{status}, 0, 'gdb -batch -p';
    like $out, qr/^stap\s+gdbprov\s+twelve\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+\Q$path1\E\s*$/m;
    like $out, qr/^stap\s+other__prov\s+one__more\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+\Q$path2\E\s*$/m;
};

subtest 'break -probe-stap reads back all 12 arguments' => sub {
    my @print = map { ('-ex', "print \$_probe_arg$_") } 0 .. 10;
    my $g = gdb('-p', $pid, '-ex', 'break -probe-stap gdbprov:twelve', '-ex', 'continue',
                @print, '-ex', 'print (char *)$_probe_arg11',
                '-ex', 'print $_probe_argc', '-ex', 'detach');
    # the driver answers once gdb has set its breakpoint and continued
    is $d->cmd('wait t 1 30000'), '1', 'gdb set the semaphore';
    is $d->cmd('fire t i:-1 i:2 i:-3 i:4 i:5 i:6 i:-9223372036854775808 i:9223372036854775807 i:9 i:10 i:-11 s:twelve'),
        'fired 1', 'the fire returns once gdb detached';
    my $out = tracer_stop($g, 'ZERO');
    my @values = $out =~ /^\$\d+ = (.*)$/mg;
    s/^0x[0-9a-f]+ // for @values;
    is_deeply \@values, [-1, 2, -3, 4, 5, 6, '-9223372036854775808', '9223372036854775807',
                         9, 10, -11, '"twelve"', 12], 'every argument, and the count'
        or diag $out;
    is $d->cmd('isenabled t'), '0', 'and cleared it when it detached';
};

# Polls the semaphore (as the driver reads it) until it is $want; returns
# what it read last.
sub semaphore_becomes {
    my ($addr, $want, $timeout) = @_;
    my $deadline = time + $timeout;
    my $got = $d->u16_at($addr);
    while ($got != $want && time < $deadline) {
        select undef, undef, undef, 0.05;
        $got = $d->u16_at($addr);
    }
    return $got;
}

# gdb's breakpoint on a probe that bpftrace traces sits on the kernel's own
# uprobe breakpoint: the kernel takes the hit, and gdb would never see it.
# So gdb also breaks on a second probe, which only it traces: firing that
# one stops gdb, which then detaches, while nothing fires the shared one.
subtest 'bpftrace and gdb on one probe: the semaphore is 2, usdt_is_enabled exactly 1' => sub {
    $d->ok_all('provider b both-tracers mod', 'probe bd fn hit int', 'probe br fn release int',
               'add b bd', 'add b br', 'enable b');
    my ($path) = $d->cmd('path b') =~ /^path (\S+)/;
    my $sem = semaphore_address($pid, $path, 'both__tracers', 'hit');
    is $d->u16_at($sem), 0, 'the semaphore is 0 untraced';
    my $bt = bpftrace('-p', $pid, 'usdt::both__tracers:hit { printf("bpftrace %lld\n", arg0); }');
    is $d->cmd('wait bd 1 20000'), '1', 'bpftrace attached: usdt_is_enabled is 1';
    is $d->u16_at($sem), 1, 'and the semaphore 1';
    my $g = gdb('-p', $pid, '-ex', 'break -probe-stap both__tracers:hit',
                '-ex', 'break -probe-stap both__tracers:release', '-ex', 'continue',
                '-ex', 'print $_probe_arg0', '-ex', 'detach');
    is $d->cmd('wait br 1 30000'), '1', 'gdb set its breakpoints and continued';
    is semaphore_becomes($sem, 2, 30), 2, 'with gdb on it as well, the semaphore counts 2';
    is $d->cmd('isenabled bd'), '1', 'usdt_is_enabled is exactly 1, not the count';
    is $d->cmd('guarded br 1 i:4242'), 'fired 1', 'the fire of the other probe returns once gdb detached';
    my $gout = tracer_stop($g, 'ZERO');     # waits until gdb exits by itself
    like $gout, qr/^\$1 = 4242$/m, 'gdb stopped there and read its argument' or diag $gout;
    is $d->u16_at($sem), 1, 'gdb detached: the semaphore is 1 again';
    is $d->cmd('isenabled bd'), '1', 'usdt_is_enabled is 1';
    is $d->cmd('isenabled br'), '0', 'and 0 for the probe only gdb traced';
    is $d->cmd('guarded bd 1 i:77'), 'fired 1';
    ok tracer_wait($bt, qr/^bpftrace 77$/m), 'bpftrace still sees the shared probe fire';
    tracer_stop($bt);
    is $d->cmd('wait bd 0 20000'), '0', 'both gone: usdt_is_enabled is 0';
    is $d->u16_at($sem), 0, 'and the semaphore 0';
    $d->ok_all('free b');
};

$d->ok_all('free g1', 'free g2');
is $d->close, 0;
done_testing;
