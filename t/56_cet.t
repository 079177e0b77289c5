# Control-flow enforcement (CET, x86_64): built with -fcf-protection, every
# member of libusdt.a is marked IBT and SHSTK, so a program that links it
# keeps both; the SDT object the library writes is marked too
# (PT_GNU_PROPERTY); and every target of an indirect call or jump (the
# exported functions, the marshaller, the three entries of a stub, the
# no-op) starts with endbr64. (i386: Linux has no user-space CET for
# 32-bit programs, so nothing is marked there.)
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use lib 't/lib';
use USDTTest qw(driver run_capture top_dir);

my $arch = (POSIX::uname())[4];
plan skip_all => "CET marking is x86_64's; this machine is $arch" if $arch ne 'x86_64';

my $top = top_dir();
my $tmp = tempdir(CLEANUP => 1);
my $lib = "$tmp/libusdt";
mkdir $lib or die;
system('cp', glob("$top/*.[chs]"), "$top/Makefile", $lib) == 0 or die;
my ($st, $out) = run_capture('make', '-C', $lib, 'clean', 'all', 'CFLAGS=-O2 -fcf-protection');
is $st, 0, 'make clean all CFLAGS="-O2 -fcf-protection"' or diag $out;

subtest 'every member of libusdt.a is marked IBT and SHSTK' => sub {
    my $x = "$tmp/members";
    mkdir $x or die;
    ($st, $out) = run_capture('sh', '-c', "cd $x && ar x $lib/libusdt.a");
    is $st, 0, 'ar x';
    my @members = sort glob "$x/*.o";
    ok @members >= 10, scalar(@members) . ' members';
    for my $o (@members) {
        my ($nst, $notes) = run_capture('readelf', '-nW', $o);
        like $notes, qr/x86 feature: IBT, SHSTK/, (split m{/}, $o)[-1];
    }
};

# (Debian's own crt1.o is not marked, so a whole program never is here;
# ld -r of a marked object with the archive shows what the library keeps.)
subtest 'linking the archive into -fcf-protection code keeps IBT and SHSTK' => sub {
    open my $c, '>', "$tmp/prog.c" or die;
    print $c qq{#include "usdt.h"\nint prog(void) { return usdt_is_enabled(0); }\n};
    close $c;
    ($st, $out) = run_capture('cc', '-O2', '-fcf-protection', "-I$lib", '-c', '-o',
                              "$tmp/prog.o", "$tmp/prog.c");
    is $st, 0, 'compiles' or diag $out;
    ($st, $out) = run_capture('ld', '-r', '-o', "$tmp/combined.o", "$tmp/prog.o",
                              '--whole-archive', "$lib/libusdt.a");
    is $st, 0, 'ld -r with the whole archive' or diag $out;
    my ($nst, $notes) = run_capture('readelf', '-nW', "$tmp/combined.o");
    like $notes, qr/x86 feature: IBT, SHSTK/, 'the result is still marked IBT, SHSTK'
        or diag $notes;
};

subtest 'the SDT object is marked IBT and SHSTK' => sub {
    my $d = driver();
    $d->ok_all('provider p cetprov mod', 'probe a fn a int', 'add p a', 'enable p');
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    my ($nst, $notes) = run_capture('readelf', '-nW', $path);
    like $notes, qr/x86 feature: IBT, SHSTK/, 'readelf -n shows the property note';
    my ($lst, $segments) = run_capture('readelf', '-lW', $path);
    like $segments, qr/^\s+GNU_PROPERTY\s/m, 'in a PT_GNU_PROPERTY segment';
    is $d->close, 0;
};

subtest 'endbr64 at every indirect branch target' => sub {
    my ($ost, $dis) = run_capture('objdump', '-d', "$lib/usdt_tracepoints.o");
    for my $fn (qw(usdt_is_enabled usdt_fire_probe usdt_probe_args usdt_tracepoint_noop
                   usdt_stub_template)) {
        like $dis, qr/^[0-9a-f]+ <\Q$fn\E>:\n\s+[0-9a-f]+:\s+f3 0f 1e fa\s+endbr64/m,
            "$fn starts with endbr64";
    }
    my ($start) = $dis =~ /^([0-9a-f]+) <usdt_stub_template>:/m;
    my ($noop) = $dis =~ /^([0-9a-f]+) <usdt_tracepoint_noop>:/m;
    for my $entry ([21, 'the DTrace part'], [33, 'the SDT part (probe_addr)']) {
        like $dis, qr/^\s+\Q${\ sprintf '%x', hex($start) + $entry->[0]}\E:\s+f3 0f 1e fa\s+endbr64/m,
            "stub offset $entry->[0], $entry->[1], starts with endbr64";
    }
    like $dis, qr/^\s+\Q${\ sprintf '%x', hex($noop) - 12}\E:\s+f3 0f 1e fa\s+endbr64/m,
        'the no-op DTrace entry (12 bytes before the no-op) starts with endbr64';
};

done_testing;
