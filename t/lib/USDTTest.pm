package USDTTest;

# What every test file shares: the C driver (test_usdt), run as a child
# and scripted line by line, and the tracers (bpftrace, gdb, perf) started
# against its pid. Every process started here is stopped by its pid, also
# when a test dies (END block).

use strict;
use warnings;
no warnings 'portable';    # 64-bit addresses in hex
use Exporter 'import';
use IPC::Open2 ();
use IO::Handle;
use POSIX ();
use File::Temp ();
use Time::HiRes ();
use Cwd ();

our @EXPORT_OK = qw(driver tracer_start tracer_stop tracer_output tracer_wait
                    wait_for_file run_capture top_dir bpftrace gdb perf
                    tracer_missing needs_tracers semaphore_address mapped_address);

my %started;    # pid => description, for the END block

sub top_dir {
    my $dir = Cwd::abs_path(__FILE__);
    $dir =~ s{/t/lib/USDTTest\.pm$}{};
    return $dir;
}

# ---- The driver -----------------------------------------------------------

# driver(%env): start ./test_usdt with extra environment; returns an object
# with ->cmd(LINE) (the answer line), ->pid, ->close.
sub driver {
    my (%env) = @_;
    # _exe: another driver, given as a command (e.g. "qemu-i386 PATH")
    my @exe = split ' ', ($env{_exe} // top_dir() . '/test_usdt');
    delete $env{_exe};
    local %ENV = (%ENV, %env);
    for (keys %env) { delete $ENV{$_} unless defined $env{$_} }
    my ($out, $in);
    my $pid = IPC::Open2::open2($out, $in, @exe) or die "cannot start @exe";
    $in->autoflush(1);
    $started{$pid} = 'test_usdt';
    my $self = bless { pid => $pid, in => $in, out => $out }, 'USDTTest::Driver';
    return $self;
}

package USDTTest::Driver;

sub pid { $_[0]{pid} }

# One command, one answer line (chomped). Dies if the driver went away.
sub cmd {
    my ($self, $line) = @_;
    my $out = $self->{out};
    print { $self->{in} } "$line\n" or die "driver gone (writing '$line')";
    my $answer = <$out>;
    die "driver gone (after '$line')" unless defined $answer;
    chomp $answer;
    return $answer;
}

# A command whose answer comes later (the driver is busy with it): send
# now, recv when ready.
sub send {
    my ($self, $line) = @_;
    print { $self->{in} } "$line\n" or die "driver gone (writing '$line')";
}

sub recv {
    my ($self) = @_;
    my $out = $self->{out};
    my $answer = <$out>;
    die "driver gone" unless defined $answer;
    chomp $answer;
    return $answer;
}

# The 16-bit value at ADDR in the driver's memory (an SDT semaphore), read
# by the driver itself.
sub u16_at {
    my ($self, $addr) = @_;
    my $answer = $self->cmd(sprintf 'mem 0x%x 2', $addr);
    my ($lo, $hi) = $answer =~ /^mem ([0-9a-f]{2}) ([0-9a-f]{2})$/
        or die "mem answered '$answer'";
    return hex($hi . $lo);
}

# Several commands; dies unless each answers "ok".
sub ok_all {
    my ($self, @lines) = @_;
    for my $l (@lines) {
        my $a = $self->cmd($l);
        die "'$l' answered '$a'" unless $a eq 'ok' || $a =~ /^ok /;
    }
    return 1;
}

sub close {
    my ($self) = @_;
    return $self->{status} if defined $self->{status};
    print { $self->{in} } "quit\n";
    close $self->{in};
    waitpid($self->{pid}, 0);
    $self->{status} = $?;
    delete $started{$self->{pid}};
    return $self->{status};
}

sub kill9 {
    my ($self) = @_;
    kill 'KILL', $self->{pid};
    waitpid($self->{pid}, 0);
    $self->{status} = $?;
    delete $started{$self->{pid}};
}

package USDTTest;

# ---- Tracers --------------------------------------------------------------

# tracer_start(ARGV..., {ready => REGEX, timeout => S}): start a tracer with
# its output (stdout and stderr) in a file; wait until a line matches
# ready. Returns {pid, file}; dies on timeout.
sub tracer_start {
    my $opts = ref $_[-1] eq 'HASH' ? pop : {};
    my @argv = @_;
    my $tmp = File::Temp->new(SUFFIX => '.out');
    my $file = $tmp->filename;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $file or POSIX::_exit(127);
        open STDERR, '>&', \*STDOUT;
        exec @argv or POSIX::_exit(127);
    }
    $started{$pid} = $argv[0];
    my $t = { pid => $pid, file => $file, tmp => $tmp, argv => \@argv };
    if (my $ready = $opts->{ready}) {
        my $deadline = time + ($opts->{timeout} // 60);
        while (1) {
            my $text = tracer_output($t);
            last if $text =~ $ready;
            if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
                delete $started{$pid};
                die "$argv[0] exited before it was ready:\n$text";
            }
            if (time > $deadline) {
                tracer_stop($t, 'KILL');
                die "$argv[0] not ready after $opts->{timeout}s:\n$text";
            }
            Time::HiRes::sleep(0.05);
        }
    }
    return $t;
}

# Wait until the tracer's output matches REGEX, or CODE returns true for
# it (its events reach the output file asynchronously: stopping it too
# early can lose the last ones). 1 or 0.
sub tracer_wait {
    my ($t, $want, $timeout) = @_;
    my $deadline = time + ($timeout // 30);
    my $done = ref $want eq 'CODE' ? $want : sub { $_[0] =~ $want };
    until ($done->(tracer_output($t))) {
        return 0 if time > $deadline;
        Time::HiRes::sleep(0.05);
    }
    return 1;
}

sub tracer_output {
    my ($t) = @_;
    open my $fh, '<', $t->{file} or return '';
    local $/;
    my $text = <$fh> // '';
    return $text;
}

# ---- Which tracers this machine has ----------------------------------------
#
# The suite needs bpftrace, gdb and perf, run as root. Without them a test
# file (or a part of one) is skipped, saying why. Under CI=true (.ci/run)
# a missing tracer is a failure, never a skip: the README promises that CI
# runs every tracer test, so these die there instead.

sub in_ci { return ($ENV{CI} // '') eq 'true' }

sub installed {
    my ($tool) = @_;
    return grep { -f "$_/$tool" && -x _ } split /:/, ($ENV{PATH} // '');
}

# tracer_missing(TOOL...): why these tracers cannot be used here (not
# installed, or not root: they attach to another process), or undef when
# all can. Under CI=true, dies instead of returning a reason.
sub tracer_missing {
    my @why;
    for my $tool (@_) {
        if (!installed($tool)) {
            push @why, "$tool is not installed";
        } elsif ($> != 0) {
            push @why, "$tool needs root to attach to the test process";
        }
    }
    return undef unless @why;
    my $why = join '; ', @why;
    die "CI=true: $why. In CI a missing tracer fails the suite (.ci/setup.sh installs them; run as root)\n"
        if in_ci();
    return $why;
}

# needs_tracers(TOOL...): at the top of a test file that is all about
# tracers: skip the whole file, saying why, when one cannot be used (dies
# under CI=true).
sub needs_tracers {
    my $why = tracer_missing(@_);
    return unless defined $why;
    require Test::More;
    Test::More::plan(skip_all => $why);
}

# A tracer's command name, once it is known to be usable; dies otherwise
# (a test that starts a tracer must have asked tracer_missing first).
sub usable {
    my ($tool) = @_;
    my $why = tracer_missing($tool);
    die "$why (this test should have checked tracer_missing or needs_tracers)\n" if defined $why;
    return $tool;
}

# gdb(ARGS...): start `gdb -nx -batch ARGS...` as a tracer (its output in a
# file); returns at once, like tracer_start.
sub gdb {
    my @args = @_;
    my $opts = ref $args[-1] eq 'HASH' ? pop @args : {};
    return tracer_start(usable('gdb'), '-nx', '-batch', @args, $opts);
}

# perf(ARGS...): start `perf ARGS...` as a tracer; returns at once.
sub perf {
    my @args = @_;
    my $opts = ref $args[-1] eq 'HASH' ? pop @args : {};
    return tracer_start(usable('perf'), @args, $opts);
}

# bpftrace(ARGS..., SCRIPT): start bpftrace and return once every probe of
# the script is attached. "Attaching N probes" is printed before the
# attaching, and a probe's semaphore counts up before its program is
# attached, so neither says a fire would be seen; BEGIN runs after all
# probes are attached, so the script gets a BEGIN that says "ready".
sub bpftrace {
    my @args = @_;
    my $script = pop @args;
    return tracer_start(usable('bpftrace'), @args, '-e',
                        'BEGIN { printf("bpftrace-ready\n"); } ' . $script,
                        { ready => qr/^bpftrace-ready$/m, timeout => 60 });
}

# Stop a tracer by its pid (SIGINT, or the given signal), wait for it;
# returns its output.
sub tracer_stop {
    my ($t, $signal) = @_;
    if ($started{$t->{pid}}) {
        kill $signal // 'INT', $t->{pid};
        my $deadline = time + 60;
        while (waitpid($t->{pid}, POSIX::WNOHANG()) != $t->{pid}) {
            if (time > $deadline) { kill 'KILL', $t->{pid}; waitpid($t->{pid}, 0); last }
            Time::HiRes::sleep(0.05);
        }
        $t->{status} = $?;
        delete $started{$t->{pid}};
    }
    return tracer_output($t);
}

# run_capture(ARGV...): run a command to completion; (exit status, output).
sub run_capture {
    my @argv = @_;
    my $t = tracer_start(@argv);
    waitpid($t->{pid}, 0);
    my $status = $?;
    delete $started{$t->{pid}};
    return ($status, tracer_output($t));
}

# semaphore_address(PID, PATH, PROVIDER, NAME): the address, in process
# PID, of the SDT semaphore of probe PROVIDER:NAME (as published: a '-' is
# '__') in the object at PATH. Found the way a tracer finds it: the note
# gives the semaphore's link-time address, and mapped_address where it is
# now. Dies if any step finds nothing.
sub semaphore_address {
    my ($pid, $path, $provider, $name) = @_;
    my ($st, $notes) = run_capture('readelf', '-nW', $path);
    my $sem;
    while ($notes =~ /Provider: (\S*)\s+Name: (\S*)\s+Location: \S+, Base: \S+, Semaphore: (0x[0-9a-f]+)/g) {
        $sem = hex $3 if $1 eq $provider && $2 eq $name;
    }
    die "semaphore_address: no note for $provider:$name in $path\n$notes" unless $sem;
    return mapped_address($pid, $path, $sem);
}

# mapped_address(PID, PATH, VADDR): where the link-time address VADDR of
# the object at PATH is in process PID: the LOAD segments give its file
# offset, and the line of /proc/PID/maps that maps that offset of the file
# where it is now (privately, as the loader maps it: a shared mapping of
# the file, like a JIT arena's write view, is not where its code runs).
# Dies if any step finds nothing.
sub mapped_address {
    my ($pid, $path, $vaddr_wanted) = @_;
    my ($lst, $segments) = run_capture('readelf', '-lW', $path);
    my $file_offset;
    while ($segments =~ /^\s+LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+\S+\s+\S+\s+(0x[0-9a-f]+)/mg) {
        my ($offset, $vaddr, $memsz) = (hex $1, hex $2, hex $3);
        $file_offset = $vaddr_wanted - $vaddr + $offset
            if $vaddr_wanted >= $vaddr && $vaddr_wanted < $vaddr + $memsz;
    }
    die "mapped_address: no LOAD segment holds 0x" . sprintf('%x', $vaddr_wanted) . " in $path\n$segments"
        unless defined $file_offset;
    my $inode = (stat $path)[1] // die "mapped_address: $path: $!\n";
    open my $maps, '<', "/proc/$pid/maps" or die "mapped_address: /proc/$pid/maps: $!\n";
    while (<$maps>) {
        my ($start, $end, $perms, $offset, $dev, $ino) = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) (\S+) (\d+)/
            or next;
        next unless $ino == $inode && $perms =~ /p$/ && hex($offset) <= $file_offset
                    && $file_offset < hex($offset) + hex($end) - hex($start);
        return hex($start) + $file_offset - hex($offset);
    }
    die "mapped_address: $path (inode $inode) does not map offset $file_offset in process $pid\n";
}

sub wait_for_file {
    my ($path, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    until (-e $path) { return 0 if time > $deadline; Time::HiRes::sleep(0.05) }
    return 1;
}

END {
    my $status = $?;
    for my $pid (keys %started) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    $? = $status;
}

1;
