# ARCH=aarch64: the library and driver cross-built for 64-bit ARM from a
# copy of the tree, the way a binding builds it (make ARCH=aarch64
# CC="clang --target=aarch64-linux-gnu"), then everything that needs no
# tracer runs under qemu-aarch64 (user-mode emulation): the API contract,
# the marshaller (0..32 arguments, registers kept), the SDT object and its
# notes, a semaphore turned on by hand the way the kernel does it, gdb
# through qemu's gdb stub, and the JIT arena (usdt_jit_*) with the toy JIT
# of t/77 emitting aarch64 code. The uprobe-based tracers cannot follow a
# process through qemu-user (the kernel sees qemu's x86 code, not the
# aarch64 object's), so bpftrace and perf are not run on aarch64 here.
# Under CI=true a missing cross toolchain, qemu or gdb-multiarch fails.
use strict;
use warnings;
no warnings 'portable';    # 64-bit addresses in hex
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use IO::Socket::INET;
use USDTTest qw(driver run_capture top_dir semaphore_address mapped_address tracer_start
                tracer_stop tracer_wait);

my $cc = 'clang --target=aarch64-linux-gnu';
my $sysroot = '/usr/aarch64-linux-gnu';

# What the cross build and the emulation need (.ci/setup.sh installs them).
my @missing;
push @missing, 'qemu-aarch64 (qemu-user)' unless USDTTest::installed('qemu-aarch64');
push @missing, 'clang (clang)' unless USDTTest::installed('clang');
push @missing, 'aarch64-linux-gnu-ld (binutils-aarch64-linux-gnu)'
    unless USDTTest::installed('aarch64-linux-gnu-ld');
push @missing, "$sysroot/lib/libc.so.6 (libc6-dev-arm64-cross)"
    unless -e "$sysroot/lib/libc.so.6" && -e "$sysroot/include/stdio.h";
push @missing, 'libgcc for aarch64 (libgcc-12-dev-arm64-cross)'
    unless glob '/usr/lib/gcc-cross/aarch64-linux-gnu/*/libgcc.a';
if (@missing) {
    my $why = 'missing for the aarch64 tests: ' . join(', ', @missing);
    die "CI=true: $why. In CI this fails the suite (.ci/setup.sh installs them)\n"
        if USDTTest::in_ci();
    plan skip_all => $why;
}

my $top = top_dir();
my $tmp = tempdir(CLEANUP => 1);
system('cp', glob("$top/*.[chs]"), "$top/Makefile", $tmp) == 0 or die;

# --- The build -----------------------------------------------------------

my ($st, $out) = run_capture('make', '-C', $tmp, 'ARCH=aarch64', "CC=$cc", 'all', 'test_usdt');
is $st, 0, "make ARCH=aarch64 CC=\"$cc\" all test_usdt" or diag $out;
unlike $out, qr/warning/i, 'no warnings' or diag $out;
my (undef, $file) = run_capture('file', '-L', "$tmp/test_usdt");
like $file, qr/ELF 64-bit LSB .*ARM aarch64/, 'an aarch64 driver';
my (undef, $members) = run_capture('ar', 't', "$tmp/libusdt.a");
my @members = split ' ', $members;
my (undef, $headers) = run_capture('readelf', '-h', "$tmp/libusdt.a");
my @machines = $headers =~ /^\s+Machine:\s+(.*?)\s*$/mg;
is scalar @machines, scalar @members, 'readelf reads every archive member (' . scalar(@members) . ')';
is_deeply [ grep { $_ ne 'AArch64' } @machines ], [], 'and every one is an AArch64 object';
my (undef, $dry) = run_capture('make', '-C', $tmp, '-n', '-B', 'ARCH=arm64', "CC=$cc", 'usdt_tracepoints.o');
like $dry, qr/usdt_tracepoints_aarch64\.s/, "ARCH=arm64 (node's name) selects aarch64 too";
unlike $dry, qr/-m64|-m32/, 'and passes no -m64 to the aarch64 compiler';

# `make aarch64` builds a second copy in build/aarch64; here with branch
# protection on, as a distribution that enables it by default would.
($st, $out) = run_capture('make', '-C', $tmp, 'aarch64',
                          'CFLAGS=-O2 -g -mbranch-protection=standard');
is $st, 0, 'make aarch64 (build/aarch64), with -mbranch-protection=standard' or diag $out;
unlike $out, qr/warning/i, 'no warnings' or diag $out;
my (undef, $props) = run_capture('readelf', '-n', "$tmp/build/aarch64/libusdt.a");
my @marked = $props =~ /AArch64 feature: BTI, PAC/g;
is scalar @marked, scalar @members, 'every archive member is marked BTI and PAC, the .s file too';

my $qemu = "qemu-aarch64 -L $sysroot";
my $runner = "$qemu $tmp/test_usdt";
my $bti_runner = "$qemu $tmp/build/aarch64/test_usdt";

# --- The tracer-free test files, with the aarch64 driver -------------------

{
    local $ENV{USDT_TEST_EXE} = $runner;
    local $ENV{USDT_TEST_EMULATED} = 1;
    my ($pst, $pout) = run_capture('prove', '-I', "$top/t/lib", "$top/t/15_marshal.t");
    is $pst, 0, 'aarch64: t/15_marshal.t (0..32 arguments, callee-saved registers kept)' or diag $pout;
    local $ENV{USDT_TEST_EXE} = $bti_runner;
    ($pst, $pout) = run_capture('prove', '-I', "$top/t/lib", "$top/t/15_marshal.t");
    is $pst, 0, 'aarch64, branch protection on: t/15_marshal.t' or diag $pout;
}

# t/10_api.t expects the x86 text for USDT_BACKEND=dof (DTrace's helper
# device is missing); aarch64 refuses dof before that, with its own text,
# checked below. Every other subtest must pass as it is.
my $dof_subtest = 'USDT_BACKEND=dof on a host without DTrace: a clear error naming the device';
my $dof_error = 'error USDT_BACKEND=dof is not supported on aarch64: the DOF backend (DTrace) '
              . 'has stubs for x86 only; use USDT_BACKEND=sdt or auto';
{
    local $ENV{USDT_TEST_EXE} = $runner;
    local $ENV{USDT_TEST_EMULATED} = 1;
    my ($ast, $tap) = run_capture($^X, '-I', "$top/t/lib", "$top/t/10_api.t");
    my @failed = $tap =~ /^not ok \d+ - (.*)$/mg;
    my @passed = $tap =~ /^ok \d+ - (.*)$/mg;
    ok @passed >= 10, 'aarch64: t/10_api.t ran (' . scalar(@passed) . ' subtests passed)' or diag $tap;
    is_deeply [ grep { $_ ne $dof_subtest } @failed ], [],
        'aarch64: every subtest of t/10_api.t passes but the DOF one' or diag $tap;
    my @got = $tap =~ /^\s+#\s+got: '(.*)'$/mg;
    is_deeply [ grep { $_ ne $dof_error } @got ], [], 'which fails only on the aarch64 DOF text'
        or diag $tap;
}

# --- The SDT object ------------------------------------------------------

my $d = driver(_exe => $runner);
is $d->cmd('arch'), 'arch aarch64', 'the driver runs (under qemu-aarch64)';
my ($pid) = $d->cmd('pid') =~ /^pid (\d+)/;
my @where = ((map { "x$_" } 0 .. 7), map { '[sp, ' . (16 + 8 * $_) . ']' } 0 .. 3);
my @counts = (0, 1, 8, 9, 12, 32);
$d->ok_all('provider p sdt-prov mod');
for my $n (@counts) {
    my @types = map { $_ % 2 ? 'str' : 'int' } 0 .. $n - 1;
    $d->ok_all("probe a$n fn args-$n @types", "add p a$n");
}
is $d->cmd('enable p'), 'ok', 'enable (USDT_BACKEND unset: auto is sdt here)';
my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
ok $path, "the object is at $path";
open my $fh, '<:raw', $path or die "$path: $!";
my $image = do { local $/; <$fh> };
close $fh;
sub word_at { unpack 'V', substr($image, $_[0], 4) }

# The SDT notes of an object, as readelf -nW shows them, in order; and
# its writable LOAD segments, [address, size] each.
sub sdt_notes {
    my ($object) = @_;
    my ($status, $text) = run_capture('readelf', '-nW', $object);
    die "readelf -nW $object: $text" if $status != 0;
    my @found;
    while ($text =~ /Provider: (\S*)\s+Name: (\S*)\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)\s+Arguments: ?([^\n]*)/g) {
        push @found, { provider => $1, name => $2, pc => hex $3, base => hex $4, sem => hex $5, args => $6 };
    }
    return @found;
}
sub writable_segments {
    my ($object) = @_;
    my (undef, $text) = run_capture('readelf', '-lW', $object);
    return map { [ hex $1, hex $2 ] }
           $text =~ /^\s+LOAD\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+\S+\s+\S+\s+(0x[0-9a-f]+)\s+RW /mg;
}

my @notes = sdt_notes($path);
is scalar @notes, scalar @counts, 'one note per probe (readelf -n)';
my (undef, $sections) = run_capture('readelf', '-SW', $path);
my %sec;
while ($sections =~ /\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)/g) {
    $sec{$1} = { addr => hex $2, off => hex $3, size => hex $4 };
}
my @rw = writable_segments($path);
for my $i (0 .. $#counts) {
    my $n = $counts[$i];
    my $note = $notes[$i];
    my $stub = $sec{'.text'}{addr} + 48 * $i;
    is $note->{provider}, 'sdt__prov', "$n args: '-' in the provider is published as '__'";
    is $note->{name}, "args__$n", "$n args: and in the probe name";
    is $note->{pc}, $stub + 36, "$n args: location is the stub's nop";
    is sprintf('%08x', word_at($note->{pc})), 'd503201f', "$n args: which is a nop (d503201f)";
    is sprintf('%08x %08x', word_at($stub), word_at($stub + 32)), 'd503245f d503245f',
        "$n args: both entries of the stub are BTI landing pads (bti c)";
    is $note->{base}, $sec{'.stapsdt.base'}{addr}, "$n args: base is .stapsdt.base";
    is $note->{sem}, $sec{'.probes'}{addr} + 2 * $i, "$n args: a 2-byte semaphore in .probes";
    ok((grep { $note->{sem} >= $_->[0] && $note->{sem} + 2 <= $_->[0] + $_->[1] } @rw),
       "$n args: inside the writable LOAD segment");
    my $shown = $n > 12 ? 12 : $n;
    my $want = join ' ', map { ($_ % 2 ? '' : '-') . "8\@$where[$_]" } 0 .. $shown - 1;
    is $note->{args}, $want, "$n args: argument specs" . ($n > 12 ? ' (the first 12)' : '');
}

my ($ast, $all) = run_capture('readelf', '-aW', $path);
is $ast, 0, 'readelf -a';
unlike $all, qr/warning|error/i, 'readelf -a prints no warning';
like $all, qr/Class:\s+ELF64/, 'ELFCLASS64';
like $all, qr/Machine:\s+AArch64/, 'EM_AARCH64';
like $all, qr/Build ID: [0-9a-f]{40}/, 'a build-id note';
like $all, qr/GNU_STACK\s+0x0+ 0x0+ 0x0+ 0x0+ 0x0+ RW /, 'the stack is not executable';
my @loads = $all =~ /^\s+LOAD\s+(?:0x[0-9a-f]+\s+){5}(.{3}) 0x1000$/mg;
is_deeply [sort @loads], [sort 'R  ', 'R E', 'RW '], 'segments R, R E, RW: none writable and executable';
like $all, qr/FUNC\s+GLOBAL DEFAULT\s+\d+ sdt__prov_fn_args__0\b/, 'each stub has a symbol';
like $all, qr/OBJECT\s+GLOBAL DEFAULT\s+\d+ sdt__prov_args__0_semaphore\b/, 'and each semaphore one';

# --- A semaphore counted up, as the kernel does for an attached tracer ----
#
# The stubs read their semaphore with an adrp/ldrh pair patched for where
# the object is; write 1 into it through /proc/PID/mem (qemu maps the
# object like any process) and every reader must see it.

my $sem = semaphore_address($pid, $path, 'sdt__prov', 'args__9');
sub sem_write {
    my ($sem_pid, $address, $value) = @_;
    open my $mem, '+<:raw', "/proc/$sem_pid/mem" or die "/proc/$sem_pid/mem: $!";
    sysseek($mem, $address, 0) or die "seek: $!";
    syswrite($mem, pack('S', $value)) == 2 or die "write: $!";
    close $mem;
}
is $d->cmd('isenabled a9'), '0', 'untraced: usdt_is_enabled is 0';
is $d->cmd('call_isenabled a9'), '0', 'and the stub\'s own is-enabled function too';
sem_write($pid, $sem, 1);
is $d->cmd('isenabled a9'), '1', 'semaphore 1: usdt_is_enabled is 1';
is $d->cmd('call_isenabled a9'), '1', 'and the stub reads it (its adrp/ldrh point at it)';
is $d->cmd('isenabled a8'), '0', 'a neighbouring probe stays 0';
is $d->cmd('guarded a9 3 i:1 s:x i:3 i:4 i:5 i:6 i:7 i:8 i:9'), 'fired 3',
    'guarded fires enter the stub, arguments on the stack included';
is $d->cmd('fire a9 ' . join(' ', map { "i:$_" } 1 .. 32)), 'fired 1', 'and with 32 arguments';
sem_write($pid, $sem, 0);
is $d->cmd('isenabled a9'), '0', 'semaphore 0 again: 0';
is $d->cmd('guarded a9 3 i:1'), 'fired 0', 'and guarded fires stop';
$d->ok_all('free p');
is $d->close, 0, 'the driver exits cleanly';

# --- Pages of 64 KiB ------------------------------------------------------
#
# aarch64 kernels may use 16 or 64 KiB pages (Asahi Linux, RHEL); each
# LOAD segment must then start on a page of its own. With the guest's
# sysconf(_SC_PAGESIZE) answering 65536 (t/fakepage.c, preloaded in the
# guest), the object is laid out for 64 KiB pages; it still loads here, and
# its stubs still reach their semaphores (adrp/ldrh) across the larger gaps.

($st, $out) = run_capture(split(' ', $cc), '-shared', '-fPIC', '-o', "$tmp/fakepage.so",
                          "$top/t/fakepage.c", '-ldl');
is $st, 0, 'pages: the sysconf shim cross-builds' or diag $out;
my $dp = driver(_exe => "$qemu -E LD_PRELOAD=$tmp/fakepage.so -E FAKEPAGE_BYTES=65536 $tmp/test_usdt");
my ($dp_pid) = $dp->cmd('pid') =~ /^pid (\d+)/;
$dp->ok_all('provider p big mod', 'probe a fn hit int int int int int int int int int', 'add p a',
            'enable p');
my ($dp_path) = $dp->cmd('path p') =~ /^path (\S+)$/;
my (undef, $dp_segments) = run_capture('readelf', '-lW', $dp_path);
my @dp_loads = map { /^\s+LOAD\s+\S+\s+(0x[0-9a-f]+)\s+\S+\s+\S+\s+(0x[0-9a-f]+)\s+.{3}\s+(0x[0-9a-f]+)$/
                     ? [ hex $1, hex $2, $3 ] : () } split /\n/, $dp_segments;
is_deeply [ map { $_->[2] } @dp_loads ], [ ('0x10000') x 3 ], 'pages: three LOAD segments aligned to 64 KiB';
my @dp_pages = map { [ int($_->[0] / 65536), int(($_->[0] + $_->[1] - 1) / 65536) ] } @dp_loads;
ok @dp_pages == 3 && $dp_pages[0][1] < $dp_pages[1][0] && $dp_pages[1][1] < $dp_pages[2][0],
    'pages: each on 64 KiB pages of its own' or diag $dp_segments;
my $dp_sem = semaphore_address($dp_pid, $dp_path, 'big', 'hit');
is $dp->cmd('call_isenabled a'), '0', 'pages: the stub reads its semaphore: 0';
sem_write($dp_pid, $dp_sem, 1);
is $dp->cmd('call_isenabled a'), '1', 'pages: written 1 by hand, the stub reads 1';
is $dp->cmd('guarded a 2 ' . join(' ', map { "i:$_" } 1 .. 9)), 'fired 2',
    'pages: guarded fires enter the stub, arguments on the stack included';
sem_write($dp_pid, $dp_sem, 0);
$dp->ok_all('free p');
is $dp->close, 0, 'pages: the driver exits cleanly';

# --- gdb, through qemu's gdb stub -----------------------------------------
#
# The one tracer that reaches a process under qemu-user: gdb-multiarch
# talking to qemu's gdb stub. It finds the probe in the object when the
# library loads it (through a sysroot whose /proc is the host's: the object
# is /proc/PID/fd/N, and qemu's pid is the driver's), counts the semaphore
# up, stops at the nop and reads the 12 arguments, 9 to 12 from the stack,
# and walks the stack through the marshaller to the driver's main. qemu 7.2
# does not tell gdb that return addresses are signed, so this driver runs
# with pointer authentication off (the marshaller tests above run with it).
my $no_gdb;
unless (USDTTest::installed('gdb-multiarch')) {
    $no_gdb = 'gdb-multiarch is not installed (Debian package gdb-multiarch)';
    die "CI=true: $no_gdb. In CI this fails the suite (.ci/setup.sh installs it)\n"
        if USDTTest::in_ci();
}
mkdir "$tmp/sysroot" or die;
symlink("$sysroot/lib", "$tmp/sysroot/lib") && symlink('/proc', "$tmp/sysroot/proc") or die;

# A port for qemu's gdb stub.
sub free_port {
    my $listen = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0)
        or die "no free port: $!";
    my $port = $listen->sockport;
    close $listen;
    return $port;
}

SKIP: {
    skip $no_gdb, 5 if $no_gdb;
    my $port = free_port();
    # qemu waits for gdb before it runs the driver; gdb retries its connect
    # until qemu listens (tcp auto-retry)
    my $dg = driver(_exe => "qemu-aarch64 -L $sysroot -cpu max,pauth=off -g $port $tmp/test_usdt");
    my $g = tracer_start('gdb-multiarch', '-nx', '-batch', '-ex', "set sysroot $tmp/sysroot",
                         '-ex', 'set breakpoint pending on', '-ex', "target remote 127.0.0.1:$port",
                         '-ex', 'break -probe-stap gdbprov:args__12', '-ex', 'continue',
                         (map { ('-ex', "print \$_probe_arg$_") } 0 .. 11),
                         '-ex', 'bt', '-ex', 'continue', "$tmp/test_usdt");
    local $SIG{ALRM} = sub { die "gdb under qemu: no answer in 120 s:\n" . USDTTest::tracer_output($g) };
    alarm 120;
    $dg->ok_all('provider p gdbprov mod', 'probe g fn args-12 ' . join(' ', ('int') x 12),
                'add p g', 'enable p');
    is $dg->cmd('wait g 1 20000'), '1', 'gdb: a breakpoint on the probe counts its semaphore up';
    is $dg->cmd('guarded g 1 ' . join(' ', map { "i:$_" } 100 .. 111)), 'fired 1', 'gdb: a fire';
    $dg->ok_all('free p');
    is $dg->close, 0, 'gdb: the driver exits cleanly';
    alarm 0;
    tracer_wait($g, qr/exited normally/, 30);
    my $gout = tracer_stop($g);
    is_deeply [ $gout =~ /^\$\d+ = (-?\d+)$/mg ], [ 100 .. 111 ],
        'gdb stops at the site and reads all 12 arguments (x0..x7, [sp, 16]..[sp, 40])' or diag $gout;
    # the stub's symbol is gdbprov_fn_args__12; gdb shows it without the
    # "__12", which it reads as GNAT's suffix for an overloaded name
    like $gout, qr/^#0 .* in gdbprov_fn_args(?:__12)? \(\).*\n#1 .* in usdt_probe_args \(\)\n#2 .* in usdt_fire_probe_slow .*\n(#\d.*\n)*#\d+ .*main \(\)/m,
        'and its backtrace goes from the stub through the marshaller to main' or diag $gout;
}

# --- DOF: x86 only --------------------------------------------------------

my $dd = driver(_exe => $runner, USDT_BACKEND => 'dof');
$dd->ok_all('provider p prov mod', 'probe a func one int', 'add p a');
is $dd->cmd('enable p'), $dof_error, 'USDT_BACKEND=dof fails at enable, saying why';
is $dd->cmd('pfields p'), 'name prov module mod probes 1 enabled 0 error set file null', 'still disabled';
is $dd->cmd('handle a'), 'handle null';
$dd->ok_all('free p');
is $dd->close, 0;
my $ds = driver(_exe => $runner, USDT_BACKEND => 'sdt');
$ds->ok_all('provider p prov mod', 'probe a func one int', 'add p a');
is $ds->cmd('enable p'), 'ok', 'USDT_BACKEND=sdt enables';
$ds->ok_all('free p');
is $ds->close, 0;

# --- The JIT arena (usdt_jit_*) ------------------------------------------
#
# t/progs/jit_toy.c, cross-built, emits aarch64 functions into an arena at
# run time. Each loads its semaphore's address from a literal after its
# code, tests the semaphore, and only while it is nonzero passes the probe
# site, a nop with the arguments still in x0 and x1; it returns 1 when it
# passed the site, so "call" counts the calls a tracer would have seen.
# The arena's object is marked PAC and never BTI: glibc maps an object
# marked BTI with PROT_BTI, and a call into JIT code that does not start
# with "bti c" is SIGILL (as it was until usdt_elf.c made that
# distinction). qemu translates code it has not run before from what the
# R-X view shows, so code written through the arena's second mapping runs;
# code rewritten there after it ran is not noticed by qemu 7.2 (it ignores
# the cache maintenance), which no test here depends on.

my @jit_cc = (split(' ', $cc), '-O2', '-g', '-Wall', '-Wextra', '-Werror', "-I$tmp");
($st, $out) = run_capture(@jit_cc, '-o', "$tmp/jit_toy", "$top/t/progs/jit_toy.c",
                          "$tmp/libusdt.a", '-lpthread');
is $st, 0, 'jit: the toy JIT cross-builds without warnings' or diag $out;
($st, $out) = run_capture(@jit_cc, '-mbranch-protection=standard', '-o', "$tmp/jit_toy_bti",
                          "$top/t/progs/jit_toy.c", "$tmp/build/aarch64/libusdt.a", '-lpthread');
is $st, 0, 'jit: and with -mbranch-protection=standard' or diag $out;

# The disassembly of a function NAME in a program.
sub function_text {
    my ($program, $name) = @_;
    my (undef, $disasm) = run_capture('aarch64-linux-gnu-objdump', '-d', '--no-show-raw-insn',
                                      $program);
    return $disasm =~ /^[0-9a-f]+ <\Q$name\E>:\n(.*?)(?:\n\n|\z)/ms ? $1 : '';
}
# Debian 12's crt files have no landing pads, so the link does not mark
# that program BTI (forced with -z force-bti, _start itself is SIGILL):
# its own code signs return addresses, which qemu's cpu max checks.
like function_text("$tmp/jit_toy_bti", 'main'), qr/^\s+[0-9a-f]+:\s+paciasp$/m,
    'jit: in that program main signs its return address (paciasp)';

# The instruction-cache maintenance: after writing code through the second
# mapping, usdt_jit_write cleans the data cache to the point of unification
# and invalidates the instruction cache for the R-X view's addresses.
like function_text("$tmp/jit_toy", 'usdt_jit_write'), qr/\bbl\s+[0-9a-f]+ <__clear_cache>/,
    'jit: usdt_jit_write calls __clear_cache';
my $clear = function_text("$tmp/jit_toy", '__clear_cache');
$clear .= function_text("$tmp/jit_toy", $_) for $clear =~ /\bb\s+[0-9a-f]+ <([\w.]+)>/g;
like $clear, qr/\bdc\s+cvau\b(?s:.*)\bic\s+ivau\b(?s:.*)\bisb\b/,
    'jit: which cleans (dc cvau), invalidates (ic ivau) and synchronises (isb)' or diag $clear;

# What readelf says about the arena's object, and where its code runs.
sub mem_word {
    my ($mem_pid, $address) = @_;
    open my $mem, '<:raw', "/proc/$mem_pid/mem" or die "/proc/$mem_pid/mem: $!";
    sysseek($mem, $address, 0) or die "seek: $!";
    sysread($mem, my $word, 4) == 4 or die "read: $!";
    close $mem;
    return sprintf '%08x', unpack 'V', $word;
}

my $j = driver(_exe => "$qemu $tmp/jit_toy");
my ($jpid) = $j->cmd('pid') =~ /^pid (\d+)$/;
my ($jpath) = $j->cmd('path') =~ /^path (\S+)$/;
like $jpath, qr{^/proc/$jpid/fd/\d+$}, 'jit: the arena is a memory file, /proc/PID/fd/N of qemu';
my ($f) = map { hex } $j->cmd('emit f 0') =~ /^emitted (0x[0-9a-f]+)$/;
ok $f, 'jit: f emitted at the start of the arena and published';
my $called = eval { $j->cmd('call f 5') };
unless (defined $called) {
    $j->kill9;
    $called = sprintf 'the toy JIT died: signal %d (4 is SIGILL)', $j->{status} & 127;
}
is $called, 'called 5 passed 0', 'jit: f runs under qemu; untraced, no call passes the site';
die "jit: the toy JIT is gone, nothing more to test\n" unless $called =~ /^called/;

my @jnotes = sdt_notes($jpath);
is_deeply [ map { "$_->{provider}:$_->{name} $_->{args}" } @jnotes ], ['jittoy:f -8@x0 -8@x1'],
    'jit: readelf -n: one note, jittoy:f, with both arguments in registers';
is mapped_address($jpid, $jpath, $jnotes[0]{pc}), $f + 12,
    'jit: its location is f + 12 where the arena is mapped';
is mem_word($jpid, $f + 12), 'd503201f', 'jit: and the process has the nop there';
my @jrw = writable_segments($jpath);
ok((grep { $jnotes[0]{sem} >= $_->[0] && $jnotes[0]{sem} + 2 <= $_->[0] + $_->[1] } @jrw),
   'jit: its semaphore is in the writable LOAD segment');
(undef, $props) = run_capture('readelf', '-n', $jpath);
like $props, qr/^\s+Properties: AArch64 feature: PAC$/m, 'jit: the arena is marked PAC';
unlike $props, qr/BTI/, 'jit: and not BTI, so its code needs no landing pads';

# The semaphore counted up by hand, as the kernel does for a tracer.
my $jsem_f = semaphore_address($jpid, $jpath, 'jittoy', 'f');
sem_write($jpid, $jsem_f, 1);
is $j->cmd('sem f'), 'sem 1', 'jit: semaphore 1 written by hand, usdt_jit_semaphore reads 1';
is $j->cmd('call f 6'), 'called 6 passed 6', 'jit: every call passes the site';
sem_write($jpid, $jsem_f, 0);
is $j->cmd('call f 6'), 'called 6 passed 0', 'jit: semaphore 0 again: none does';
is $j->cmd('sem f'), 'sem 0';

# More code: on the page f ran from, and on the next page.
my ($g) = map { hex } $j->cmd('emit g 64') =~ /^emitted (0x[0-9a-f]+)$/;
is $g, $f + 64, 'jit: g emitted on f\'s page, after f ran';
my ($k) = map { hex } $j->cmd('emit k 4096') =~ /^emitted (0x[0-9a-f]+)$/;
is $k, $f + 4096, 'jit: k emitted on the next page';
is $j->cmd('call g 3'), 'called 3 passed 0', 'jit: g runs';
is $j->cmd('call k 3'), 'called 3 passed 0', 'jit: k runs';
@jnotes = sdt_notes($jpath);
is_deeply [ map { "$_->{name} " . sprintf('0x%x', mapped_address($jpid, $jpath, $_->{pc})) } @jnotes ],
          [ map { sprintf '%s 0x%x', $_->[0], $_->[1] + 12 } ['f', $f], ['g', $g], ['k', $k] ],
    'jit: after each publish, a note for each function at its site';
sem_write($jpid, semaphore_address($jpid, $jpath, 'jittoy', 'k'), 1);
is $j->cmd('call k 4'), 'called 4 passed 4', 'jit: k\'s semaphore on: k passes its site';
is $j->cmd('call g 4'), 'called 4 passed 0', 'jit: g, with a semaphore of its own, does not';
sem_write($jpid, semaphore_address($jpid, $jpath, 'jittoy', 'k'), 0);

# Refusals, aarch64's own and the others, with their messages.
is $j->cmd('try -8@x0 8@[sp, 16] -4@5'), 'ok', 'jit: aarch64 operands are taken';
is $j->cmd('try -8@%rdi'),
    'error usdt_jit_add_site: operand "-8@%rdi" is not an SDT operand for this architecture '
    . '(like -8@x0, 8@[sp, 16], -4@5)', 'jit: an x86 operand is refused';
is $j->cmd('tryat 2050 -8@x0'),
    sprintf('error usdt_jit_add_site: 0x%x is not on an instruction boundary '
            . '(instructions start every 4 bytes here)', $f + 2050),
    'jit: a site not on a 4-byte boundary is refused';
is $j->cmd('tryat 2052 -8@x0'), 'ok', 'jit: the next 4-byte boundary is taken';
is $j->cmd('site f'), sprintf('error usdt_jit_add_site: a site is declared at 0x%x already '
                              . '(jittoy:f)', $f + 12), 'jit: a second site at f\'s nop';
is $j->cmd('rewrite f'),
    'error usdt_jit_write: it would change the instruction at published site jittoy:f '
    . '(arena offset 12); published sites are immutable: free the arena to retire code',
    'jit: a ret over f\'s published site is refused';
is $j->cmd('same f'), 'ok', 'jit: f\'s own bytes written again are not';
is $j->cmd('outside'),
    sprintf('error usdt_jit_write: 0x%x..+4 is not inside the arena jittoy (0x%x, 8192 bytes)',
            $f + 8192, $f), 'jit: a write past the arena is refused';
is $j->cmd('badcreate'),
    'errno 22 22 | usdt_jit_create: provider name is empty: a tracer needs at least one '
    . 'character | usdt_jit_create: '
    . 'code_bytes must be 1 to 1073741824, not 0', 'jit: usdt_jit_create refuses, saying why';
# The child runs f and its write is refused (exit 2 or 3 otherwise). It
# keeps the write view (exit 4) because qemu-user 7.2 ignores
# MADV_DONTFORK; a kernel does not (t/77).
like $j->cmd('fork f'), qr/^fork (ok|bad status 1024)$/,
    'jit: a forked child runs f, cannot write, and frees its arena';
is $j->cmd('call f 2'), 'called 2 passed 0', 'jit: and the parent\'s f still runs';
is $j->cmd('free'), 'freed mapped 0', 'jit: after usdt_jit_free nothing of the arena is mapped';
open my $jmaps, '<', "/proc/$jpid/maps" or die "/proc/$jpid/maps: $!";
is scalar(grep { /libusdt-jit/ } <$jmaps>), 0, 'jit: nor in /proc/PID/maps of qemu itself';
close $jmaps;
is $j->close, 0, 'jit: the toy exits cleanly';

# The program built with branch protection calls into the arena, whose
# code has no "bti c".
my $jb = driver(_exe => "$qemu $tmp/jit_toy_bti");
my ($jb_pid) = $jb->cmd('pid') =~ /^pid (\d+)$/;
my ($jb_path) = $jb->cmd('path') =~ /^path (\S+)$/;
like $jb->cmd('emit f 0'), qr/^emitted 0x[0-9a-f]+$/, 'jit, branch protection on: f emitted';
is eval { $jb->cmd('call f 3') } // 'the toy JIT died', 'called 3 passed 0', 'jit, branch protection on: f runs';
sem_write($jb_pid, semaphore_address($jb_pid, $jb_path, 'jittoy', 'f'), 1);
is $jb->cmd('call f 3'), 'called 3 passed 3', 'jit, branch protection on: and passes its site';
is $jb->cmd('free'), 'freed mapped 0';
is $jb->close, 0, 'jit, branch protection on: the toy exits cleanly';

# gdb through qemu's gdb stub. It must connect before the toy runs, so it
# reads the arena's notes when usdt_jit_create loads it, with no site yet;
# gdb reads a library's probes once, so it stops after the first publish
# (usdt_jit_publish, finish) and reloads the library list (nosharedlibrary,
# sharedlibrary) to see jittoy:f. Then it counts the semaphore up, stops at
# the site on the 1st call and the 4th (continue 3), reads both arguments,
# and detaches, which counts the semaphore down. (Pointer authentication
# off, as above, for "finish".)
SKIP: {
    skip $no_gdb, 6 if $no_gdb;
    my $port = free_port();
    my $jg = driver(_exe => "qemu-aarch64 -L $sysroot -cpu max,pauth=off -g $port $tmp/jit_toy");
    my $g = tracer_start('gdb-multiarch', '-nx', '-batch', '-ex', "set sysroot $tmp/sysroot",
                         '-ex', "target remote 127.0.0.1:$port",
                         '-ex', 'tbreak usdt_jit_publish', '-ex', 'continue', '-ex', 'finish',
                         '-ex', 'nosharedlibrary', '-ex', 'sharedlibrary',
                         '-ex', 'break -probe-stap jittoy:f', '-ex', 'continue', '-ex', 'continue 3',
                         '-ex', 'print $_probe_argc', '-ex', 'print $_probe_arg0',
                         '-ex', 'print $_probe_arg1', '-ex', 'x/i $pc', '-ex', 'detach',
                         "$tmp/jit_toy");
    local $SIG{ALRM} = sub { die "gdb under qemu (jit): no answer in 120 s:\n" . USDTTest::tracer_output($g) };
    alarm 120;
    my ($gf) = map { hex } $jg->cmd('emit f 0') =~ /^emitted (0x[0-9a-f]+)$/;
    ok $gf, 'jit, gdb: f emitted while gdb held the toy in usdt_jit_publish';
    is $jg->cmd('call f 6'), 'called 6 passed 4',
        'jit, gdb: calls pass the site while gdb holds the semaphore up (4), none after it detached';
    is $jg->cmd('sem f'), 'sem 0', 'jit, gdb: and it counted the semaphore down again';
    is $jg->cmd('free'), 'freed mapped 0';
    is $jg->close, 0, 'jit, gdb: the toy exits cleanly';
    alarm 0;
    tracer_wait($g, qr/Detaching|detached/i, 30);
    my $gout = tracer_stop($g);
    my $site = sprintf '0x%x', $gf + 12;
    my @stops = map { sprintf '0x%x', hex } $gout =~ /^Breakpoint \d+, (0x[0-9a-f]+) in /mg;
    my ($pc, $insn) = $gout =~ /^=> (0x[0-9a-f]+):\s+(\S+)/m;
    is_deeply [ @stops, ($gout =~ /^\$\d+ = (-?\d+)$/mg), sprintf('0x%x', hex($pc // 0)), $insn ],
              [ $site, $site, 2, 3, 6, $site, 'nop' ],
        'jit, gdb: stops at f\'s site (twice), reads argc 2 and the 4th call\'s arguments (3, 6), at the nop'
        or diag $gout;
}

done_testing;
