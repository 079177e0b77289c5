# The SDT object follows the system's page size. A kernel with 16 KiB or
# 64 KiB pages (aarch64: Asahi Linux, RHEL) maps every PT_LOAD from a
# page boundary: segments laid out for 4 KiB pages would share a page,
# the loader would map the writable one over the text, and the first fire
# would crash. With sysconf(_SC_PAGESIZE) answering 16384 and 65536 (an
# LD_PRELOAD stand-in, t/fakepage.c, on this 4 KiB kernel), each LOAD
# segment is aligned to that size and starts on a page of its own; the
# object still loads here, and bpftrace traces its probe with arguments.
# A JIT arena likewise: its code starts on a page of its own, and runs.
use strict;
use warnings;
no warnings 'portable';
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use lib 't/lib';
use USDTTest qw(bpftrace driver run_capture top_dir tracer_stop);

USDTTest::needs_tracers('bpftrace');

my $tmp = tempdir(CLEANUP => 1);
my $shim = "$tmp/fakepage.so";
my ($st, $out) = run_capture('cc', '-shared', '-fPIC', '-o', $shim, top_dir() . '/t/fakepage.c', '-ldl');
is $st, 0, 'the sysconf shim builds' or diag $out;

# LOAD segments as [offset, vaddr, filesz, memsz, flags, align].
sub loads {
    my ($path) = @_;
    my (undef, $text) = run_capture('readelf', '-lW', $path);
    return map { [ map({ hex } @$_[0 .. 3]), $_->[4], hex $_->[5] ] }
           map { [ /^\s+LOAD\s+(0x\S+)\s+(0x\S+)\s+\S+\s+(0x\S+)\s+(0x\S+)\s+(.{3})\s+(0x\S+)$/ ] }
           grep { /^\s+LOAD/ } split /\n/, $text;
}

for my $page (16384, 65536) {
    subtest "pages of $page bytes" => sub {
        my $d = driver(LD_PRELOAD => $shim, FAKEPAGE_BYTES => $page);
        my ($pid) = $d->cmd('pid') =~ /^pid (\d+)$/;
        $d->ok_all('provider p pagey mod', 'probe a fn hit int str', 'add p a', 'enable p');
        my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
        my @loads = loads($path);
        is scalar @loads, 3, 'three LOAD segments';
        is_deeply [ map { $_->[5] } @loads ], [ ($page) x 3 ], "each aligned to $page";
        is_deeply [ grep { $_->[0] % $page != $_->[1] % $page } @loads ], [],
            'offset and address agree modulo the page size';
        my @pages = map { [ int($_->[1] / $page), int(($_->[1] + $_->[3] - 1) / $page) ] } @loads;
        ok $pages[0][1] < $pages[1][0] && $pages[1][1] < $pages[2][0],
            'no two segments share a page (R, then R E, then RW)'
            or diag explain \@pages;
        my $bt = bpftrace('-p', $pid, 'usdt::pagey:hit { printf("%d %s\n", arg0, str(arg1)); }');
        is $d->cmd('wait a 1 20000'), '1', 'bpftrace attached: the semaphore is 1';
        is $d->cmd('fire a i:7 s:seven'), 'fired 1';
        like tracer_stop($bt), qr/^7 seven$/m, 'bpftrace traces the fire, arguments included';
        $d->ok_all('free p');
        is $d->close, 0, 'the driver exits cleanly';
    };
}
subtest 'a JIT arena, with pages of 65536 bytes' => sub {
    my $top = top_dir();
    my ($jst, $jout) = run_capture('cc', '-O2', '-Wall', "-I$top", '-o', "$tmp/jit_toy",
                                   "$top/t/progs/jit_toy.c", "$top/libusdt.a", '-lpthread');
    is $jst, 0, 'the toy JIT builds' or diag $jout;
    my $j = driver(_exe => "$tmp/jit_toy", LD_PRELOAD => $shim, FAKEPAGE_BYTES => 65536);
    my ($path) = $j->cmd('path') =~ /^path (\S+)$/;
    my @loads = loads($path);
    is_deeply [ map { $_->[5] } @loads ], [ (65536) x 3 ], 'three LOAD segments, each aligned to 65536';
    is $loads[1][4], 'R E', 'the second is the arena';
    is $loads[1][1] % 65536, 0, 'which starts on a page of its own';
    ok $loads[1][1] + $loads[1][3] <= $loads[2][1] - $loads[2][1] % 65536,
        'and ends before the writable segment\'s page';
    like $j->cmd('emit f 0'), qr/^emitted 0x[0-9a-f]+$/, 'a function emitted and published';
    is $j->cmd('call f 3'), 'called 3', 'and it runs';
    is $j->cmd('free'), 'freed mapped 0', 'nothing of the arena stays mapped';
    is $j->close, 0;
} if (POSIX::uname())[4] eq 'x86_64';     # the toy JIT's code is x86_64's (aarch64: t/81)

done_testing;
