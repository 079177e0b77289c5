# The names bindings use. DTrace takes any name within its lengths, so a
# probe or provider name may start with a digit: node-dtrace-provider's
# own tests name a probe "32probe" (and ignore add_probe's result, so a
# refusal there made the probe vanish). bpftrace and gdb list and trace
# such a probe. Two names that publish alike ("a-b" and "a__b": '-' is
# published as "__") would be one probe to a tracer with two semaphores,
# so the second add fails with the original's "already exists" message;
# removing goes by the exact name.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(bpftrace driver run_capture tracer_start tracer_stop);

my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
my ($pid) = $d->cmd('pid') =~ /^pid (\d+)$/;

subtest 'a probe named 32probe, in a provider named 4you, is traced' => sub {
    $d->ok_all('provider p 4you mod', 'probe a fn 32probe int', 'add p a', 'enable p');
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    my ($st, $list) = run_capture('bpftrace', '-l', '-p', $pid, 'usdt:*:4you:*');
    is $list, "usdt:$path:4you:32probe\n", 'bpftrace -l lists it';
    my $bt = bpftrace('-p', $pid, 'usdt::4you:32probe { @n = count(); @v = sum(arg0); }');
    is $d->cmd('fire a i:32'), 'fired 1';
    like tracer_stop($bt), qr/^\@n: 1\n+\@v: 32$/m, 'bpftrace counts its fire, with its argument';
    my $g = tracer_start('gdb', '-batch', '-nx', '-p', $pid, '-ex', 'info probes stap 4you');
    my $out = tracer_stop($g, 'ZERO');
    like $out, qr/^stap\s+4you\s+32probe\s/m, 'gdb lists it';
    $d->ok_all('free p');
};

subtest 'names that publish alike are duplicates; removal goes by the exact name' => sub {
    $d->ok_all('provider q dupes mod', 'probe a fn a-b int', 'probe b fn a__b int',
               'probe c other a__b int', 'add q a');
    is $d->cmd('add q b'), 'error probe named dupes:mod:fn:a__b already exists',
        '"a__b" after "a-b" in one function: already exists';
    is $d->cmd('add q c'), 'ok', 'in another function it is another site of the probe';
    is $d->cmd('remove q b'), 'error failed to remove probe dupes:mod:fn:a__b',
        'removing "a__b" does not remove "a-b"';
    is $d->cmd('remove q a'), 'ok';
    is $d->cmd('add q b'), 'ok', 'once "a-b" is gone, "a__b" can be added';
    $d->ok_all('free q');
};

is $d->close, 0;
done_testing;
