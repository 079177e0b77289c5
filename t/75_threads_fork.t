# Threads and processes: the control API from several threads at once;
# exact counts when 4 threads fire under a tracer; fires that race a
# disable or a free never crash, with more firing threads than cores (so
# that they are preempted inside the library); forked children fire
# traceably and cannot break their parent's probes; exec'ed programs
# inherit nothing.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(bpftrace driver tracer_missing tracer_start tracer_stop);

my $exe = $ENV{USDT_TEST_EXE};
my @exe = $exe ? (_exe => $exe) : ();
my ($cores) = (`nproc` // '') =~ /^(\d+)/;      # the CPUs this process may run on
$cores ||= 1;
my $threads = 3 * $cores > 16 ? 16 : 3 * $cores < 4 ? 4 : 3 * $cores;   # the driver runs up to 16
my $no_bpftrace = tracer_missing('bpftrace');

subtest 'the control API from 4 threads, on their own and on one shared provider' => sub {
    my $d = driver(@exe);
    is $d->cmd('mtcontrol 4 2000'), 'errors 0';
    is $d->close, 0;
};

SKIP: {
skip $no_bpftrace, 2 if $no_bpftrace;

subtest '4 threads x 100 000 guarded fires under bpftrace: the count is exact' => sub {
    my $d = driver(@exe);
    my ($pid) = $d->cmd('pid') =~ /(\d+)/;
    $d->ok_all('provider p threads mod', 'probe a fn hit int str', 'add p a', 'enable p');
    my $bt = bpftrace('-p', $pid, 'usdt::threads:hit { @n = count(); }');
    is $d->cmd('wait a 1 20000'), '1';
    is $d->cmd('mtfire a 4 100000'), 'fired 400000', 'every guarded fire fired';
    like tracer_stop($bt), qr/^\@n: 400000$/m, 'bpftrace counted each of them';
    $d->ok_all('free p');
    is $d->close, 0;
};

# The race starts; once its probe exists bpftrace attaches, and once
# bpftrace is ready (its BEGIN ran) the GO file tells the driver to race
# 3 seconds more under it.
subtest "fires from $threads threads racing disable and enable, under bpftrace, for 3 seconds" => sub {
    my $d = driver(@exe);
    my ($pid) = $d->cmd('pid') =~ /(\d+)/;
    my $go = tempdir(CLEANUP => 1) . '/go';
    $d->send("race toggle 3 $threads $go");
    is $d->recv, 'race started', 'the probe exists';
    my $bt = bpftrace('-p', $pid, 'usdt::race:racing { @n = count(); }');
    open my $fh, '>', $go or die "$go: $!";
    close $fh;
    like $d->recv, qr/^race ok rounds many enabled-fires [1-9]\d*$/,
        'no crash; some fires saw the probe enabled';
    like tracer_stop($bt), qr/^\@n: [1-9]\d*$/m, 'and bpftrace counted fires';
    is $d->close, 0;
};
}

subtest "fires from $threads threads ($cores cores) racing free and re-creation, without a tracer" => sub {
    my $d = driver(@exe);
    is $d->cmd("race churn 3 $threads"), 'race ok rounds many enabled-fires 0', 'free and re-create, 3 seconds';
    is $d->cmd("race toggle 1 $threads"), 'race ok rounds many enabled-fires 0', 'disable and enable, 1 second';
    is $d->close, 0;
};

SKIP: {
skip $no_bpftrace, 3 if $no_bpftrace;

subtest 'a forked child fires, traceable by its own pid' => sub {
    my $d = driver(@exe);
    $d->ok_all('provider p forked mod', 'probe a fn p int', 'add p a', 'enable p');
    my $go = tempdir(CLEANUP => 1) . '/go';
    my ($child) = $d->cmd("child_fire a 5 $go") =~ /^child (\d+)$/;
    ok $child, 'the child runs';
    my $bt = bpftrace('-p', $child, 'usdt::forked:p { @n = count(); }');
    open my $fh, '>', $go or die "$go: $!";     # bpftrace is ready: the child may fire
    close $fh;
    is $d->cmd("waitchild $child"), 'child exited 0', 'the child saw itself traced and fired';
    like tracer_stop($bt), qr/^\@n: 5$/m, "bpftrace -p CHILD counted the child's 5 fires";
    is $d->cmd('isenabled a'), '0', "the parent's probe was not traced";
    $d->ok_all('free p');
    is $d->close, 0;
};

for my $mode ('memory file', 'file mode') {
    subtest "$mode: a child that frees the provider leaves the parent's probes working" => sub {
        my $dir = tempdir(CLEANUP => 1) . '/objects';
        my $d = driver(@exe, $mode eq 'file mode' ? (USDT_SDT_DIR => $dir) : ());
        my ($pid) = $d->cmd('pid') =~ /(\d+)/;
        my $fds = $d->cmd('exec_fds');
        $d->ok_all('provider p parent mod', 'probe a fn p int', 'add p a', 'enable p');
        is $d->cmd('exec_fds'), $fds, 'an exec\'ed program inherits no descriptor of ours';
        my ($path) = $d->cmd('path p') =~ /^path (\S+)/;
        is $d->cmd('foreign p'), 'ok', 'another dlopen and dlclose of our object by its path';
        is $d->cmd('child_free p'), 'child exited 0';
        ok -e $path, 'the object is still there';
        is $d->cmd('path p'), "path $path";
        my $bt = bpftrace('-p', $pid, 'usdt::parent:p { @n = count(); }');
        is $d->cmd('wait a 1 20000'), '1';
        is $d->cmd('fire a i:1'), 'fired 1';
        like tracer_stop($bt), qr/^\@n: 1$/m,
            "the parent's probe still fires into bpftrace (neither unmapped it)";
        $d->ok_all('free p');
        is $d->close, 0;
    };
}
}

done_testing;
