# bpftrace against probes the library made in the driver process: listing,
# attaching by pid and by path, exact argument values, counts across
# disable and re-enable, and is-enabled following attach, detach and
# SIGKILL of the tracer. bpftrace cannot attach before the probe exists,
# so each test does: enable -> start bpftrace -> wait until
# usdt_is_enabled says 1 (the kernel counted the tracer) -> fire.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(bpftrace driver tracer_start tracer_stop tracer_wait run_capture);

USDTTest::needs_tracers('bpftrace');

my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
my ($pid) = $d->cmd('pid') =~ /(\d+)/;

# Start bpftrace on the driver; wait until the probe behind $var is enabled.
sub attach {
    my ($var, $script) = @_;
    is $d->cmd("isenabled $var"), '0', 'not enabled before bpftrace attaches';
    my $bt = bpftrace('-p', $pid, $script);
    is $d->cmd("wait $var 1 20000"), '1', 'usdt_is_enabled is 1 once bpftrace attached';
    return $bt;
}

subtest 'bpftrace -l lists the probes of every provider' => sub {
    $d->ok_all('provider l1 list-one mod', 'probe l1a f route-start int', 'add l1 l1a',
               'provider l2 listtwo mod', 'probe l2a f second', 'add l2 l2a',
               'enable l1', 'enable l2');
    my ($p1) = $d->cmd('path l1') =~ /^path (\S+)/;
    my ($p2) = $d->cmd('path l2') =~ /^path (\S+)/;
    my ($st, $out) = run_capture('bpftrace', '-l', 'usdt:*', '-p', $pid);
    is $st, 0, 'bpftrace -l';
    like $out, qr/^usdt:\Q$p1\E:list__one:route__start$/m, 'a "-" becomes "__"';
    like $out, qr/^usdt:\Q$p2\E:listtwo:second$/m;
    $d->ok_all('free l1', 'free l2');
};

subtest 'attach by pid: integers and strings in arg0..arg5, exactly' => sub {
    $d->ok_all('provider p prov mod', 'probe d func mixed int str int str int str', 'add p d', 'enable p');
    my $bt = attach('d', 'usdt::prov:mixed { printf("%lld|%s|%lld|%s|%lld|%s\n", arg0, str(arg1), arg2, str(arg3), arg4, str(arg5)); }');
    is $d->cmd('fire d i:-9223372036854775808 s:first i:9223372036854775807 s:second i:-1 s:third'), 'fired 1';
    is $d->cmd('fire d i:0 s: i:42 s:with%20space i:-42 s:last'), 'fired 1';
    is $d->cmd('guarded d 1 i:7 s:guarded i:8 s:x i:9 s:y'), 'fired 1', 'a guarded fire fires';
    ok tracer_wait($bt, qr/^7\|guarded/m), 'bpftrace printed the last one';
    my $out = tracer_stop($bt);
    my @lines = grep { /\|/ } split /\n/, $out;
    is_deeply \@lines, [
        '-9223372036854775808|first|9223372036854775807|second|-1|third',
        '0||42|with space|-42|last',
        '7|guarded|8|x|9|y',
    ], 'every value, in order' or diag $out;
    is $d->cmd('wait d 0 10000'), '0', 'usdt_is_enabled is 0 after bpftrace exits';
    is $d->cmd('guarded d 5 i:1 s:a i:1 s:a i:1 s:a'), 'fired 0', 'guarded fires stop';
    $d->ok_all('free p');
};

subtest 'attach by path: usdt:PATH:provider:probe' => sub {
    $d->ok_all('provider p2 bypath mod', 'probe d2 fn hit int', 'add p2 d2', 'enable p2');
    my ($path) = $d->cmd('path p2') =~ /^path (\S+)$/;
    my $bt = attach('d2', "usdt:$path:bypath:hit { printf(\"hit %lld\\n\", arg0); }");
    is $d->cmd('fire d2 i:12345'), 'fired 1';
    ok tracer_wait($bt, qr/^hit 12345$/m), 'bpftrace printed it';
    like tracer_stop($bt), qr/^hit 12345$/m;
    $d->ok_all('free p2');
};

subtest 'counts across disable and re-enable with bpftrace attached throughout' => sub {
    $d->ok_all('provider c counter mod', 'probe cd fn tick int', 'add c cd', 'enable c');
    my $bt = attach('cd', 'usdt::counter:tick { @n = count(); }');
    is $d->cmd('keep cd stale'), 'ok';
    is $d->cmd('fireloop cd 10 i:1'), 'fired 10';
    is $d->cmd('disable c'), 'ok';
    is $d->cmd('fireloop cd 10 i:1'), 'fired 10', 'fires through the NULL handle';
    is $d->cmd('fireloop stale 10 i:1'), 'fired 10', 'fires through a handle kept from before';
    is $d->cmd('isenabled stale'), '0';
    is $d->cmd('enable c'), 'ok';
    is $d->cmd('isenabled cd'), '1', 're-enabled on the same object: still traced';
    is $d->cmd('fireloop cd 10 i:1'), 'fired 10';
    like tracer_stop($bt), qr/^\@n: 20$/m, 'bpftrace counted the 20 fires of enabled probes';
    $d->ok_all('free c');
};

subtest 'is-enabled follows attach, detach and SIGKILL of bpftrace' => sub {
    $d->ok_all('provider k killed mod', 'probe kd fn sig', 'probe ko fn other', 'add k kd', 'add k ko', 'enable k');
    my $bt = attach('kd', 'usdt::killed:sig { @n = count(); }');
    is $d->cmd('isenabled ko'), '0', 'only the traced probe is enabled';
    tracer_stop($bt, 'KILL');
    is $d->cmd('wait kd 0 20000'), '0', '0 again after bpftrace is killed with SIGKILL';
    my $bt2 = attach('kd', 'usdt::killed:sig { @n = count(); }');
    tracer_stop($bt2);
    is $d->cmd('wait kd 0 20000'), '0', '0 after a clean detach';
    $d->ok_all('free k');
};

is $d->close, 0;
done_testing;
