# The driver under valgrind (memcheck): the whole API, 10 000 enable and
# disable cycles, 10 000 providers created, enabled and freed, DOF
# documents, refused input (among it 33 arguments, with types given or
# not): no error, nothing definitely or indirectly lost.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my $tmp = tempdir(CLEANUP => 1);
my $script = <<"END";
provider p valgrind mod
probe a fn one int str
probe b fn two
probe c fn three int int int int int int int int int int int int int int int int int int int int int int int int int int int int int int int int
add p a
add p b
add p c
add p NULL
add p a
enable p
enable p
isenabled a
fire a i:1 s:x
fire c i:1 i:2 i:3 i:4 i:5 i:6 i:7 i:8 i:9 i:10 i:11 i:12 i:13 i:14 i:15 i:16 i:17 i:18 i:19 i:20 i:21 i:22 i:23 i:24 i:25 i:26 i:27 i:28 i:29 i:30 i:31 i:32
dof p $tmp/p.dof
keep a stale
disable p
fire stale i:1 s:y
cycle p 10000
remove p b
enable p
disable p
free p
release a
release b
release b
release c
probe_argc x fn big 33
probe x fn big33 ${\ join ' ', ('int') x 33}
probe_typed x fn big 33
probe_typed x fn big 18446744073709551615
provider x *54:b mod
provider y my.app%0a%c3%a9 m%0a
probe e f%20n a:b%20c int
add y e
enable y
free y
release e
provider q other mod
probe d fn d *200:t
add q d
dof q $tmp/q.dof
free q
release d
churn 10000
quit
END
my ($st, $out) = run_capture('sh', '-c',
    "printf '%s' '$script' | valgrind -q --leak-check=full --show-leak-kinds=definite,indirect " .
    "--errors-for-leak-kinds=definite,indirect --error-exitcode=99 " . top_dir() . '/test_usdt');
is $st, 0, 'valgrind: no memory error and no leak' or diag $out;
unlike $out, qr/==\d+==/, 'valgrind printed nothing' or diag $out;
$out =~ s/^==\d+==.*\n//mg;
(my $answers = $out) =~ s/^ok \d+$/ok N/m;
is $answers, join('', map { "$_\n" } 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok',
    'error usdt_provider_add_probe: probedef is NULL',
    'error probe named valgrind:mod:fn:one already exists',
    'ok', 'ok', '0', 'fired 1', 'fired 1', 'ok N', 'ok', 'ok', 'fired 1',
    ('ok') x 9, 'error EINVAL', 'error EINVAL', 'error EINVAL', 'error EINVAL',
    q{error EINVAL usdt_create_provider: provider name "} . ('b' x 40) . q{..." is too long: the limit is 53 bytes},
    'ok', 'ok', 'ok', 'ok', 'ok', 'ok',
    'ok', 'ok', 'error probe other:mod:fn:d: argument 0 type is too long: the limit is 127 bytes',
    'error no probes defined', 'ok', 'ok', 'ok'), 'every command answered as expected';
done_testing;
