# libbpf against probes the library made: a BPF program written with
# BPF_USDT (t/progs/libbpf_usdt.bpf.c), loaded and attached with
# bpf_program__attach_usdt by a plain libbpf loader (t/progs/libbpf_usdt.c),
# both built here with clang and libbpf-dev. By pid to a provider's object
# (its usdt_provider_path, a memory file), an integer and a string argument
# read exactly, the semaphore 1 while attached and 0 once the loader has
# exited or been killed; by path alone to a site in a JIT arena
# (t/progs/jit_toy.c). The loader says "attached" once
# bpf_program__attach_usdt has returned: by then the uprobe is registered
# with its program, so a fire after that line is seen.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use lib 't/lib';
use USDTTest qw(driver run_capture top_dir tracer_start tracer_stop tracer_wait);

# The BPF side reads registers through bpf_tracing.h, which must be told
# the architecture whose struct pt_regs it reads.
my %bpf_target_arch = (x86_64 => 'x86', aarch64 => 'arm64');
my $arch = (POSIX::uname())[4];
plan skip_all => "no BPF target architecture known here for $arch"
    unless $bpf_target_arch{$arch};

my $top = $ENV{USDT_TOP} // top_dir();
my $tmp = tempdir(CLEANUP => 1);

# What this file needs: clang (BPF target), libbpf's headers and library,
# and root to load BPF programs. Missing, the file is skipped, saying why;
# under CI=true that is a failure, as for the tracers (t/lib/USDTTest.pm).
sub libbpf_missing {
    my @why;
    push @why, 'clang is not installed (Debian: clang)' unless USDTTest::installed('clang');
    open my $probe, '>', "$tmp/has_libbpf.c" or die "$tmp/has_libbpf.c: $!";
    print $probe "#include <bpf/libbpf.h>\n"
               . "int main(void) { return libbpf_major_version() >= 1 ? 0 : 1; }\n";
    close $probe;
    my ($st, $out) = run_capture('cc', '-o', "$tmp/has_libbpf", "$tmp/has_libbpf.c", '-lbpf');
    ($st, $out) = run_capture("$tmp/has_libbpf") if $st == 0;
    push @why, 'libbpf 1.x is not installed (Debian: libbpf-dev)' if $st != 0;
    push @why, 'libbpf needs root to load BPF programs' if $> != 0;
    return @why ? join('; ', @why) : undef;
}
if (defined(my $why = libbpf_missing())) {
    die "CI=true: $why. In CI that fails the suite (.ci/setup.sh installs clang and libbpf-dev; run as root)\n"
        if USDTTest::in_ci();
    plan skip_all => $why;
}

# Build the BPF object and its loader, with every warning an error.
# Debian keeps <asm/*.h> under the multiarch directory, which clang does
# not search for the BPF target.
my ($mst, $multiarch) = run_capture('cc', '-print-multiarch');
chomp $multiarch;
my @asm_include = $mst == 0 && $multiarch ne '' && -d "/usr/include/$multiarch"
                ? ("-I/usr/include/$multiarch") : ();
my $bpf_object = "$tmp/libbpf_usdt.bpf.o";
my $loader = "$tmp/libbpf_usdt";
my ($st, $out) = run_capture('clang', '-target', 'bpf', "-D__TARGET_ARCH_$bpf_target_arch{$arch}",
                             '-O2', '-g', '-Wall', '-Wextra', '-Werror', @asm_include,
                             '-c', "$top/t/progs/libbpf_usdt.bpf.c", '-o', $bpf_object);
is $st, 0, 'the BPF program builds without warnings' or diag $out;
($st, $out) = run_capture('cc', '-O2', '-g', '-Wall', '-Wextra', '-Werror', '-o', $loader,
                          "$top/t/progs/libbpf_usdt.c", '-lbpf', '-lelf', '-lz');
is $st, 0, 'the libbpf loader builds without warnings' or diag $out;
unless (-x $loader && -f $bpf_object) {
    done_testing;
    exit;
}

# Attach PROGRAM (int_str or int_int) to PROVIDER:NAME in BINARY for PID
# (-1: by path alone); returns once the loader said "attached". Dies with
# the loader's output (libbpf's messages) if it exits instead.
sub libbpf_attach {
    my ($program, $pid, $binary, $provider, $name) = @_;
    return tracer_start($loader, $bpf_object, $program, $pid, $binary, $provider, $name,
                        { ready => qr/^attached$/m, timeout => 60 });
}

# The loader's event lines so far, without the "event " prefix.
sub events_of {
    my ($text) = @_;
    return [ $text =~ /^event (.*)$/mg ];
}

sub wait_events {
    my ($t, $count) = @_;
    return tracer_wait($t, sub { @{ events_of($_[0]) } >= $count });
}

my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
my ($pid) = $d->cmd('pid') =~ /^pid (\d+)$/;

subtest 'attach by pid to the provider object: an integer and a string, exactly' => sub {
    $d->ok_all('provider p libbpfprov mod', 'probe a func request-start int str',
               'add p a', 'enable p');
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    like $path, qr{^/proc/$pid/fd/\d+$}, 'usdt_provider_path is the memory file, /proc/PID/fd/N';
    is $d->cmd('isenabled a'), '0', 'not enabled before libbpf attaches';
    my $t = libbpf_attach('int_str', $pid, $path, 'libbpfprov', 'request__start');
    is $d->cmd('isenabled a'), '1', 'usdt_is_enabled is 1 while libbpf is attached';

    # 3000 bytes, every one placed: a chunk lost or repeated shows
    my $long = join '', map { chr(ord('a') + $_ % 26) } 0 .. 2999;
    is $d->cmd('fire a i:-9223372036854775808 s:first'), 'fired 1', 'INT64_MIN and a word';
    is $d->cmd("fire a i:9223372036854775807 s:$long"), 'fired 1', 'INT64_MAX and 3000 bytes';
    is $d->cmd('fire a i:-1 s:'), 'fired 1', '-1 and the empty string';
    ok wait_events($t, 3), 'the loader printed three events';
    my $text = tracer_stop($t);
    like $text, qr/^detached$/m, 'the loader detached cleanly' or diag $text;
    is_deeply events_of($text), [
        '-9223372036854775808 first',
        "9223372036854775807 $long",
        '-1 ',
    ], 'every value, in order' or diag $text;
    is $d->cmd('wait a 0 10000'), '0', 'usdt_is_enabled is 0 after the loader exits';
    $d->ok_all('free p');
};

subtest 'the semaphore is 0 again after the loader is killed with SIGKILL' => sub {
    $d->ok_all('provider k libbpfkill mod', 'probe ka func sig int str', 'add k ka', 'enable k');
    my ($path) = $d->cmd('path k') =~ /^path (\S+)$/;
    my $t = libbpf_attach('int_str', $pid, $path, 'libbpfkill', 'sig');
    is $d->cmd('isenabled ka'), '1', 'usdt_is_enabled is 1 while libbpf is attached';
    tracer_stop($t, 'KILL');
    is $d->cmd('wait ka 0 20000'), '0', '0 again once the killed loader is gone';
    is $d->cmd('guarded ka 5 i:1 s:x'), 'fired 0', 'guarded fires stop';
    $d->ok_all('free k');
};

subtest 'attach by path alone to a site in a JIT arena' => sub {
    plan skip_all => "the toy JIT emits x86_64 code; this machine is $arch" if $arch ne 'x86_64';
    my ($jst, $jout) = run_capture('cc', '-O2', '-g', '-Wall', '-Wextra', '-Werror', "-I$top",
                                   '-o', "$tmp/jit_toy", "$top/t/progs/jit_toy.c",
                                   "$top/libusdt.a", '-lpthread');
    is $jst, 0, 'the toy JIT builds' or return diag $jout;
    my $j = driver(_exe => "$tmp/jit_toy");
    my ($jit_pid) = $j->cmd('pid') =~ /^pid (\d+)$/;
    like $j->cmd('emit f 0'), qr/^emitted 0x[0-9a-f]+$/, 'f emitted and published';
    my ($path) = $j->cmd('path') =~ /^path (\S+)$/;
    like $path, qr{^/proc/$jit_pid/fd/\d+$}, 'the arena is a memory file';
    is $j->cmd('sem f'), 'sem 0', 'untraced: 0';
    my $t = libbpf_attach('int_int', -1, $path, 'jittoy', 'f');
    is $j->cmd('sem f'), 'sem 1', 'traced: 1';
    is $j->cmd('call f 3'), 'called 3', 'f(0, 0), f(1, 2), f(2, 4)';
    ok wait_events($t, 3), 'the loader printed three events';
    my $text = tracer_stop($t);
    is_deeply events_of($text), ['0 0', '1 2', '2 4'], 'both arguments of every call, in order'
        or diag $text;
    # the decrement is the kernel's, at unregistering: no command of the
    # toy JIT waits for it, so ask until it says 0 (or 20 s passed)
    my $deadline = time + 20;
    my $sem;
    while (($sem = $j->cmd('sem f')) ne 'sem 0' && time < $deadline) {
        select undef, undef, undef, 0.05;
    }
    is $sem, 'sem 0', '0 once the loader is gone';
    is $j->close, 0, 'the toy JIT exits cleanly';
};

is $d->close, 0, 'the driver exits cleanly';
done_testing;
