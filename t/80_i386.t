# ARCH=i386: a 32-bit library and driver built from a copy of the tree the
# way a binding builds it, then the tests that need no tracer run against
# it: API contract, marshaller, DOF documents, SDT object, natively where
# the kernel runs 32-bit programs, else under qemu-i386 (user-mode
# emulation). Natively, bpftrace and gdb run against it too; through qemu
# no tracer can follow a process, and the TAP output says that they were
# not run and why.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my $top = top_dir();
my $tmp = tempdir(CLEANUP => 1);
system('cp', glob("$top/*.[chs]"), "$top/Makefile", $tmp) == 0 or die;
my ($st, $out) = run_capture('make', '-C', $tmp, 'ARCH=i386', 'all', 'test_usdt');
is $st, 0, 'make ARCH=i386 all test_usdt' or diag $out;
unlike $out, qr/warning/i, 'no warnings';
my ($fst, $file) = run_capture('file', '-L', "$tmp/test_usdt");
like $file, qr/ELF 32-bit LSB .* Intel 80386/, 'a 32-bit driver';
my ($ast, $ar) = run_capture('objdump', '-f', "$tmp/libusdt.a");
like $ar, qr/file format elf32-i386/, 'a 32-bit archive';
unlike $ar, qr/elf64/, 'with nothing 64-bit in it';

my $native = -x "$tmp/test_usdt" && system("echo quit | $tmp/test_usdt 2>/dev/null") == 0;
my $runner = $native ? "$tmp/test_usdt" : "qemu-i386 $tmp/test_usdt";
note $native ? 'running natively' : 'running under qemu-i386';
for my $t (qw(t/10_api.t t/15_marshal.t t/20_dof.t t/30_sdt_object.t)) {
    local $ENV{USDT_TEST_EXE} = $runner;
    local $ENV{USDT_TEST_EMULATED} = $native ? '' : 1;
    my ($pst, $pout) = run_capture('prove', '-I', "$top/t/lib", "$top/$t");
    is $pst, 0, "i386: $t" or diag $pout;
    unlike $pout, qr/\.t \.+ skipped:/, "i386: $t ran (was not skipped as a whole)";
}

# Where this kernel runs 32-bit programs natively, the tracers can follow
# them: bpftrace and gdb then run against the i386 driver too. Where it
# does not, that is a fact of the machine, not a skipped check: the TAP
# output says so in a comment.
if ($native) {
    for my $t (qw(t/40_bpftrace.t t/50_gdb.t)) {
        local $ENV{USDT_TEST_EXE} = "$tmp/test_usdt";
        my ($pst, $pout) = run_capture('prove', '-I', "$top/t/lib", "$top/$t");
        is $pst, 0, "i386, natively, under the tracers: $t" or diag $pout;
    }
} else {
    note 'tracer tests on i386 not run: this kernel does not run 32-bit programs '
         . 'natively (the i386 driver, run directly, does not start), and tracers '
         . 'cannot follow a program through qemu-i386';
}
done_testing;
