# Ghost objects: once a control call returns, tracers see exactly the live
# probes, each once. A retired object (probe set changed and re-enabled, or
# provider freed) must be gone from /proc/PID/maps and from
# `bpftrace -l -p PID` at once: checked right after the call returns, with
# no further library call and no waiting. (bpftrace 0.17 with a ghost
# mapped: `-l` shows a retired probe such as a removed one, and a probe
# present in both objects is attached twice, so one fire counts 2.)
#
# And, for DTrace: no DOF registration re-uses a stub address that an
# earlier registration used (fasttrap on macOS and illumos mis-handles it),
# and each registration is removed before the next one of its provider.
# There is no DTrace kernel here, so t/fakehelper.c (an LD_PRELOAD shim)
# stands in for /dev/dtrace/helper and records every document it is given.
#
# USDT_TOP=DIR runs another tree's test_usdt (e.g. a pristine copy);
# USDT_TEST_EXE=PATH another driver binary.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(bpftrace driver run_capture tracer_stop);
use DOFReader qw(parse_file);

my $top = $ENV{USDT_TOP} // USDTTest::top_dir();
my @exe = (_exe => $ENV{USDT_TEST_EXE} // "$top/test_usdt");
my $tmp = tempdir(CLEANUP => 1);

sub pid_of { my ($d) = @_; return ($d->cmd('pid') =~ /^pid (\d+)$/)[0] }

# The distinct objects (memory files, by inode) of provider NAME mapped in
# PID, read from /proc/PID/maps without asking the driver anything.
sub objects_mapped {
    my ($pid, $name) = @_;
    open my $fh, '<', "/proc/$pid/maps" or die "/proc/$pid/maps: $!";
    my %inodes;
    while (<$fh>) {
        $inodes{(split ' ')[4]} = 1 if m{ /memfd:libusdt:\Q$name\E \(deleted\)$};
    }
    return [sort keys %inodes];
}

sub inode_of { my ($path) = @_; return (stat $path)[1] // 'none' }

# `bpftrace -l -p PID 'usdt:*:PROV:*'`: (exit status, sorted lines).
sub listed {
    my ($pid, $prov) = @_;
    my ($st, $out) = run_capture('bpftrace', '-l', '-p', $pid, "usdt:*:$prov:*");
    return ($st, join '', sort map { "$_\n" } split /\n/, $out);
}

# bpftrace counts probe PROBE of PROV by pid while the driver fires VAR
# once; returns its output.
sub count_one_fire {
    my ($d, $pid, $prov, $probe, $var) = @_;
    my $bt = bpftrace('-p', $pid, "usdt::$prov:$probe { \@n = count(); }");
    is $d->cmd("isenabled $var"), '1', 'the probe is traced';
    is $d->cmd("fire $var i:1"), 'fired 1';
    return tracer_stop($bt);
}

sub check_one_fire {
    my ($out) = @_;
    like $out, qr/^Attaching 2 probes\.\.\.$/m, 'bpftrace attached BEGIN and one probe';
    like $out, qr/^\@n: 1$/m, 'one fire counted exactly once';
}

# --- A. Ghost probes (bpftrace) ---------------------------------------------

subtest 'Devel::DTrace::Provider sequence (enable, disable, add, enable): each probe once' => sub {
    my $d = driver(@exe);
    my $pid = pid_of($d);
    $d->ok_all('provider p ghostseq mod', 'probe a fn a int', 'add p a', 'enable p',
               'disable p', 'probe b fn b int', 'add p b', 'enable p');
    my $objects = objects_mapped($pid, 'ghostseq');
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    is "@$objects", inode_of($path), 'only the current object is mapped';
    my ($st, $out) = listed($pid, 'ghostseq');
    is $st, 0, 'bpftrace -l';
    is $out, "usdt:$path:ghostseq:a\nusdt:$path:ghostseq:b\n", 'a and b listed once each';
    check_one_fire(count_one_fire($d, $pid, 'ghostseq', 'a', 'a'));
    is $d->close, 0;
};

subtest 'free and remake with the same names: the new probe once' => sub {
    my $d = driver(@exe);
    my $pid = pid_of($d);
    $d->ok_all('provider p ghostremake mod', 'probe a fn a int', 'add p a', 'enable p',
               'free p',
               'provider p2 ghostremake mod', 'probe a2 fn a int', 'add p2 a2', 'enable p2');
    my $objects = objects_mapped($pid, 'ghostremake');
    my ($path) = $d->cmd('path p2') =~ /^path (\S+)$/;
    is "@$objects", inode_of($path), 'only the new object is mapped';
    my ($st, $out) = listed($pid, 'ghostremake');
    is $st, 0, 'bpftrace -l';
    is $out, "usdt:$path:ghostremake:a\n", 'a listed once, in the new object';
    check_one_fire(count_one_fire($d, $pid, 'ghostremake', 'a', 'a2'));
    is $d->close, 0;
};

subtest 'changed probe set (b removed, re-enabled): b gone, a once' => sub {
    my $d = driver(@exe);
    my $pid = pid_of($d);
    $d->ok_all('provider p ghostchanged mod', 'probe a fn a int', 'probe b fn b int',
               'add p a', 'add p b', 'enable p', 'disable p', 'remove p b', 'enable p');
    my $objects = objects_mapped($pid, 'ghostchanged');
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    is "@$objects", inode_of($path), 'only the current object is mapped';
    my ($st, $out) = listed($pid, 'ghostchanged');
    is $st, 0, 'bpftrace -l';
    is $out, "usdt:$path:ghostchanged:a\n", 'b is not listed, a once';
    check_one_fire(count_one_fire($d, $pid, 'ghostchanged', 'a', 'a'));
    is $d->close, 0;
};

subtest 'freed provider: gone from maps and from bpftrace -l when free returns' => sub {
    my $d = driver(@exe);
    my $pid = pid_of($d);
    $d->ok_all('provider p ghostfreed mod', 'probe a fn a int', 'probe b fn b str',
               'add p a', 'add p b', 'enable p');
    is scalar @{ objects_mapped($pid, 'ghostfreed') }, 1, 'mapped while enabled';
    $d->ok_all('free p');       # the probedefs a and b stay alive, as a binding's would
    my $maps = do { open my $fh, '<', "/proc/$pid/maps" or die; local $/; <$fh> };
    is join('', grep { m{/memfd:libusdt:ghostfreed\b} } split /^/, $maps), '',
        'no /memfd:libusdt:ghostfreed line in /proc/PID/maps';
    my ($st, $out) = listed($pid, 'ghostfreed');
    is $st, 0, 'bpftrace -l';
    is $out, '', 'bpftrace -l lists none of its probes';
    is $d->close, 0;
};

subtest 'idle program: retired objects unmapped with no later call' => sub {
    my $d = driver(@exe);
    my $pid = pid_of($d);
    # three changed re-enables; the program then makes no call at all
    $d->ok_all('provider p ghostidle mod', 'probe a fn a int', 'probe b fn b int',
               'add p a', 'enable p', 'disable p', 'add p b', 'enable p',
               'disable p', 'remove p b', 'enable p',
               'disable p', 'add p b', 'enable p');
    my $objects = objects_mapped($pid, 'ghostidle');
    is scalar @$objects, 1, 'one object mapped, right after the last enable returned';
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    is "@$objects", inode_of($path), 'and it is the current one';
    is $d->close, 0;
};

# --- B. DOF: stub addresses never re-used ---------------------------------

my $shim = "$tmp/fakehelper.so";
my $src = USDTTest::top_dir() . '/t/fakehelper.c';
my ($cst, $cout) = run_capture('cc', '-shared', '-fPIC', '-o', $shim, $src, '-ldl');
is $cst, 0, 'built the fake helper device shim' or diag $cout;

# Every site a registration hands to DTrace: each probe's stub address, its
# probe sites and its is-enabled sites (base + offset on Linux).
sub sites {
    my ($doc) = @_;
    my %s;
    for my $p (@{ $doc->{probes} }) {
        $s{ $p->{addr} } = "$p->{name} stub";
        $s{ $p->{addr} + $_ } = "$p->{name} probe site" for @{ $p->{offsets} };
        $s{ $p->{addr} + $_ } = "$p->{name} is-enabled site" for @{ $p->{enoffsets} };
    }
    return \%s;
}

for my $mode ('dof', 'auto') {
    subtest "DOF ($mode backend): no registration re-uses an earlier stub address" => sub {
        my $dir = "$tmp/helper-$mode";
        mkdir $dir or die "$dir: $!";
        my $d = driver(@exe, LD_PRELOAD => $shim, FAKEHELPER_DIR => $dir,
                       USDT_BACKEND => $mode eq 'dof' ? 'dof' : undef);
        # the same provider enabled three times unchanged, then changed
        # (b added) and enabled twice, then freed and made again
        my @names = ('a', 'a', 'a', 'a b', 'a b', 'a');
        $d->ok_all('provider p dofreuse mod', 'probe a fn a int str', 'add p a', 'enable p');
        like $d->cmd('path p'), qr{^path /proc/\d+/fd/\d+$}, 'auto: the SDT object too'
            if $mode eq 'auto';
        $d->ok_all('disable p', 'enable p', 'disable p', 'enable p', 'disable p',
                   'probe b fn b int', 'add p b',
                   'enable p', 'disable p', 'enable p',
                   'free p',
                   'provider p2 dofreuse mod', 'probe a2 fn a int str', 'add p2 a2',
                   'enable p2', 'free p2');
        is $d->close, 0, 'the driver exited cleanly';

        open my $fh, '<', "$dir/log" or die "$dir/log: $!";
        my @log = map { chomp; $_ } <$fh>;
        my @adds = grep { /^add / } @log;
        is scalar @adds, scalar @names, 'one HELPER_ADD per enable' or diag join "\n", @log;
        is join("\n", grep { !/^(add \d+ \d+\.dof mod|remove \d+)$/ } @log), '',
            'only well-formed adds, and removes of registered generations';

        my (@earlier, %provider_of);
        for my $i (0 .. $#adds) {
            my ($gen, $file) = $adds[$i] =~ /^add (\d+) (\S+)/;
            my ($doc, $err) = parse_file("$dir/$file", encoding => 'host');
            is $err, undef, "registration $i ($file) passes the kernel's checks";
            next unless $doc;
            $provider_of{$gen} = $doc->{provider}{name};
            is $doc->{provider}{name}, 'dofreuse', "registration $i: provider";
            is join(' ', map { $_->{name} } @{ $doc->{probes} }), $names[$i],
                "registration $i: probes $names[$i]";
            my $sites = sites($doc);
            my @reused;
            for my $j (0 .. $#earlier) {
                push @reused, map { sprintf '0x%x (%s; registration %d: %s)', $_, $sites->{$_},
                                    $j, $earlier[$j]{$_} }
                              grep { exists $earlier[$j]{$_} } sort { $a <=> $b } keys %$sites;
            }
            is scalar @reused, 0, "registration $i re-uses no earlier stub address"
                or diag join "\n", "re-used:", @reused;
            push @earlier, $sites;
        }

        # the log in order: before each add, the previous registration of
        # the same provider was removed; after the last free, none is left
        my (%last, %removed, @late);
        for my $line (@log) {
            if ($line =~ /^add (\d+)/) {
                my $prov = $provider_of{$1} // '?';
                push @late, "generation $1 added while $last{$prov} was registered"
                    if defined $last{$prov} && !$removed{ $last{$prov} };
                $last{$prov} = $1;
            } elsif ($line =~ /^remove (\d+)$/) {
                $removed{$1} = 1;
            }
        }
        is join("\n", @late), '', 'each registration removed before the next one';
        is join(' ', grep { !$removed{$_} } sort keys %provider_of), '',
            'none left registered after the frees';
    };
}

done_testing;
