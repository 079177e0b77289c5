# gdb attached to the driver: `info probes stap` lists the providers, and a
# breakpoint on a probe reads back all 12 arguments of a 12-argument probe.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(driver tracer_start tracer_stop run_capture);

my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
my ($pid) = $d->cmd('pid') =~ /(\d+)/;

$d->ok_all('provider g1 gdbprov mod', 'provider g2 other-prov mod',
           'probe t fn twelve int int int int int int int int int int int str',
           'probe o fn one-more int', 'add g1 t', 'add g2 o', 'enable g1', 'enable g2');
my ($path1) = $d->cmd('path g1') =~ /^path (\S+)/;
my ($path2) = $d->cmd('path g2') =~ /^path (\S+)/;

subtest 'info probes stap lists each provider' => sub {
    my ($st, $out) = run_capture('gdb', '-nx', '-batch', '-p', $pid, '-ex', 'info probes stap');
    is $st, 0, 'gdb -batch -p';
    like $out, qr/^stap\s+gdbprov\s+twelve\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+\Q$path1\E\s*$/m;
    like $out, qr/^stap\s+other__prov\s+one__more\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+\Q$path2\E\s*$/m;
};

subtest 'break -probe-stap reads back all 12 arguments' => sub {
    my @print = map { ('-ex', "print \$_probe_arg$_") } 0 .. 10;
    my $gdb = tracer_start('gdb', '-nx', '-batch', '-p', $pid,
                           '-ex', 'break -probe-stap gdbprov:twelve', '-ex', 'continue',
                           @print, '-ex', 'print (char *)$_probe_arg11',
                           '-ex', 'print $_probe_argc', '-ex', 'detach');
    # the driver answers once gdb has set its breakpoint and continued
    is $d->cmd('wait t 1 30000'), '1', 'gdb set the semaphore';
    is $d->cmd('fire t i:-1 i:2 i:-3 i:4 i:5 i:6 i:-9223372036854775808 i:9223372036854775807 i:9 i:10 i:-11 s:twelve'),
        'fired 1', 'the fire returns once gdb detached';
    my $out = tracer_stop($gdb);
    my @values = $out =~ /^\$\d+ = (.*)$/mg;
    s/^0x[0-9a-f]+ // for @values;
    is_deeply \@values, [-1, 2, -3, 4, 5, 6, '-9223372036854775808', '9223372036854775807',
                         9, 10, -11, '"twelve"', 12], 'every argument, and the count'
        or diag $out;
    is $d->cmd('isenabled t'), '0', 'and cleared it when it detached';
};

$d->ok_all('free g1', 'free g2');
is $d->close, 0;
done_testing;
