# The low-level API for language VMs (usdt_jit_*): a toy JIT
# (t/progs/jit_toy.c) emits x86_64 functions at run time, each with an
# inline semaphore test and a nop5 probe site, arguments left in %rdi and
# %rsi. bpftrace lists and counts them with exact arguments, a function
# published later is seen by a tracer started later, gdb stops at a site
# and reads its arguments, code written on a page where gdb's breakpoint
# left a private copy runs, bad input is refused with a clear message, and
# nothing of the arena stays mapped after usdt_jit_free.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use lib 't/lib';
use USDTTest qw(bpftrace driver run_capture top_dir tracer_start tracer_stop tracer_wait);

my $arch = (POSIX::uname())[4];
plan skip_all => "this file checks the toy JIT's x86_64 code (aarch64: t/81, under qemu); "
                 . "this machine is $arch" if $arch ne 'x86_64';

my $top = $ENV{USDT_TOP} // top_dir();
my $tmp = tempdir(CLEANUP => 1);
my ($st, $out) = run_capture('cc', '-O2', '-g', '-Wall', '-Wextra', '-Werror', "-I$top",
                             '-o', "$tmp/jit_toy", "$top/t/progs/jit_toy.c",
                             "$top/libusdt.a", '-lpthread');
is $st, 0, 'the toy JIT builds without warnings' or diag $out;

my $d = driver(_exe => "$tmp/jit_toy");
my ($pid) = $d->cmd('pid') =~ /^pid (\d+)$/;
my ($path) = $d->cmd('path') =~ /^path (\S+)$/;
like $path, qr{^/proc/$pid/fd/\d+$}, 'the arena is a memory file, reached as /proc/PID/fd/N';
my (undef, $props) = run_capture('readelf', '-n', $path);
like $props, qr/^\s+Properties: x86 feature: SHSTK$/m,
    'the arena is marked SHSTK, not IBT: JIT code needs no endbr64';

subtest 'bpftrace -l -p lists a published site' => sub {
    like $d->cmd('emit f 0'), qr/^emitted 0x[0-9a-f]+$/, 'f emitted and published';
    my ($status, $list) = run_capture('bpftrace', '-l', '-p', $pid, 'usdt:*:jittoy:*');
    is $status, 0, 'bpftrace -l';
    is $list, "usdt:$path:jittoy:f\n", 'exactly the published site';
};

subtest 'bpftrace counts 1000 calls with exact arguments; the semaphore follows it' => sub {
    is $d->cmd('sem f'), 'sem 0', 'untraced: 0';
    my $bt = bpftrace('-p', $pid,
                      'usdt::jittoy:f { @n = count(); @a = sum(arg0); @b = sum(arg1); }');
    is $d->cmd('sem f'), 'sem 1', 'traced: 1';
    is $d->cmd('call f 1000'), 'called 1000';
    my $text = tracer_stop($bt);
    like $text, qr/^\@n: 1000$/m, '1000 calls counted';
    like $text, qr/^\@a: 499500$/m, 'arg0 summed exactly (0..999)';
    like $text, qr/^\@b: 999000$/m, 'arg1 summed exactly (2 x 0..999)';
    is $d->cmd('sem f'), 'sem 0', 'and 0 once bpftrace is gone';
};

subtest 'rewriting a traced function unchanged keeps the tracer\'s breakpoint' => sub {
    my $bt = bpftrace('-p', $pid, 'usdt::jittoy:f { @n = count(); }');
    is $d->cmd('sem f'), 'sem 1', 'traced';
    is $d->cmd('call f 10'), 'called 10';
    is $d->cmd('same f'), 'ok', 'the same bytes written over f, its site included';
    is $d->cmd('call f 10'), 'called 10';
    like tracer_stop($bt), qr/^\@n: 20$/m, 'every call counted, before and after the write';
    is $d->cmd('sem f'), 'sem 0', 'and the kernel took its breakpoint out again';
};

subtest 'a function published later is traced by a bpftrace started afterwards' => sub {
    like $d->cmd('emit g 64'), qr/^emitted /, 'g emitted on the same page, published';
    my $bt = bpftrace('-p', $pid, 'usdt::jittoy:g { @g = count(); @s = sum(arg1); }');
    is $d->cmd('call g 7'), 'called 7';
    my $text = tracer_stop($bt);
    like $text, qr/^\@g: 7$/m, 'g counted';
    like $text, qr/^\@s: 42$/m, 'with its arguments';
};

subtest 'gdb stops at a site and reads the arguments; new code on that page runs' => sub {
    my $g = tracer_start('gdb', '-batch', '-nx', '-p', $pid, '-ex', 'break -probe-stap jittoy:f',
                         '-ex', 'continue', '-ex', 'print $_probe_argc',
                         '-ex', 'print $_probe_arg0', '-ex', 'print $_probe_arg1',
                         '-ex', 'detach');
    my $deadline = time + 60;
    # gdb has set its breakpoint when it wrote the semaphore
    while ($d->cmd('sem f') ne 'sem 1' && time < $deadline) { select undef, undef, undef, 0.05 }
    is $d->cmd('call f 4'), 'called 4', 'the calls return once gdb detached';
    my $text = tracer_stop($g, 'ZERO');
    my @values = $text =~ /^\$\d+ = (.*)$/mg;
    is_deeply \@values, [2, 0, 0], 'argc 2, and the first call\'s arguments (0, 0)' or diag $text;
    is $d->cmd('private f'), 'private 1',
        'gdb left a private copy of the page (the case the write path must handle)';
    like $d->cmd('emit h 128'), qr/^emitted /, 'h written on that page';
    is $d->cmd('call h 3'), 'called 3', 'and it runs (no int3 from a stale copy)';
    my $bt = bpftrace('-p', $pid, 'usdt::jittoy:h { @h = count(); }');
    is $d->cmd('call h 5'), 'called 5';
    like tracer_stop($bt), qr/^\@h: 5$/m, 'and bpftrace traces it there';
};

subtest 'bad input gets a clear error' => sub {
    is $d->cmd('try -8@%rdi 8@-16(%rbp) -4@$5 1@%al'), 'ok', 'valid operands are taken';
    is $d->cmd('try 8@rdi'),
        'error usdt_jit_add_site: operand "8@rdi" is not an SDT operand for this '
        . 'architecture (like -8@%rdi, 8@-16(%rbp), -4@$5)';
    is $d->cmd('try 3@%rdi'),
        'error usdt_jit_add_site: operand "3@%rdi" is not an SDT operand for this '
        . 'architecture (like -8@%rdi, 8@-16(%rbp), -4@$5)';
    my $thirteen = join ' ', ('8@%rdi') x 13;
    is $d->cmd("try $thirteen"),
        'error usdt_jit_add_site: more than 12 operands in "' . substr($thirteen, 0, 80) . '"';
    like $d->cmd('site f'), qr/^error usdt_jit_add_site: a site is declared at 0x[0-9a-f]+ already \(jittoy:f\)$/;
    is $d->cmd('rewrite f'),
        'error usdt_jit_write: it would change the instruction at published site jittoy:f '
        . '(arena offset 10); published sites are immutable: free the arena to retire code';
    like $d->cmd('outside'),
        qr/^error usdt_jit_write: 0x[0-9a-f]+\.\.\+1 is not inside the arena jittoy \(0x[0-9a-f]+, 8192 bytes\)$/;
    is $d->cmd('badcreate'),
        'errno 22 22 | usdt_jit_create: provider name is empty: a tracer needs at least '
        . 'one character | usdt_jit_create: '
        . 'code_bytes must be 1 to 1073741824, not 0',
        'usdt_jit_create: EINVAL, and usdt_jit_errstr(NULL) says why';
    is $d->cmd('call f 1'), 'called 1', 'and the arena still works';
};

subtest 'a forked child runs the code, cannot change it, and frees only its own' => sub {
    is $d->cmd('fork f'), 'fork ok', 'child: f ran, the write was refused, nothing left mapped';
    like $d->cmd('emit k 192'), qr/^emitted /, 'the parent still writes its arena';
    is $d->cmd('call k 2'), 'called 2', 'and runs what it wrote';
};

subtest 'after usdt_jit_free nothing of the arena is mapped' => sub {
    is $d->cmd('free'), 'freed mapped 0';
    is $d->close, 0, 'the toy exits cleanly';
};

subtest 'valgrind: no memory error, no leak, no descriptor left' => sub {
    my ($vst, $vout) = run_capture('sh', '-c',
        "printf 'emit f 0\\ncall f 10\\nemit g 64\\ncall g 3\\nfork f\\n"
        . "try -8\@%%rdi\\nfree\\n' | valgrind -q --smc-check=all --leak-check=full "
        . "--errors-for-leak-kinds=definite,indirect --error-exitcode=9 --track-fds=yes "
        . "--child-silent-after-fork=yes $tmp/jit_toy");
    is $vst, 0, 'valgrind exit status 0' or diag $vout;
    like $vout, qr/^freed mapped 0$/m, 'the arena was freed';
    unlike $vout, qr/libusdt|memfd|pagemap|\/mem\b/, 'no descriptor of the arena is open at exit';
};

done_testing;
