# Hardened hosts: where executable memory files are forbidden
# (vm.memfd_noexec=2, set here in a new pid namespace, where it applies
# only to that namespace), enable falls back on its own to file mode in a
# private directory, BASE/libusdt-UID, in the first of $XDG_RUNTIME_DIR,
# $TMPDIR, /tmp, /var/tmp, /dev/shm that works; tracers find the object by
# its path. Where every one of them is noexec (tmpfs mounted noexec in a
# private mount namespace), enable fails saying what was tried and how to
# fix it, and leaves nothing behind.
#
# The driver runs as pid 1 of its namespace, started by a small script
# (driver() splits _exe on whitespace). What its private mount namespace
# holds is seen from here through /proc/PID/root.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(driver bpftrace tracer_stop tracer_missing);

plan skip_all => 'needs root (namespaces, vm.memfd_noexec)' if $> != 0;
plan skip_all => 'needs vm.memfd_noexec (Linux 6.3+)' unless -e '/proc/sys/vm/memfd_noexec';

my $drv = $ENV{USDT_TEST_EXE} // USDTTest::top_dir() . '/test_usdt';
plan skip_all => "the driver must be one file, not '$drv'" if $drv =~ /\s/;
# A sanitizer's allocator maps memory of its own: mappings are compared
# only without one (t/70 says the same).
my $san = $ENV{USDT_TEST_SANITIZER};
my $no_bpftrace = tracer_missing('bpftrace');
my $tmp = tempdir(CLEANUP => 1);
my $uid = $>;
my $scripts = 0;

# A driver in a new pid namespace with vm.memfd_noexec=2, after the shell
# lines $setup ran there (in a private mount namespace). The driver is
# opened before: the tree itself may be under a directory mounted over.
sub hardened_driver {
    my ($setup, %env) = @_;
    my $script = "$tmp/hardened-" . $scripts++ . '.sh';
    open my $fh, '>', $script or die "$script: $!";
    print $fh "#!/bin/sh\nexec 3<'$drv'\n",
              "exec unshare --pid --fork --mount-proc sh -c '",
              'echo 2 > /proc/sys/vm/memfd_noexec || exit 97; ',
              ($setup ? "$setup || exit 98; " : ''),
              "exec /proc/self/fd/3'\n";
    close $fh;
    chmod 0755, $script;
    my $d = driver(_exe => $script, XDG_RUNTIME_DIR => undef, TMPDIR => undef, %env);
    die 'the driver did not start in its namespace' unless $d->cmd('pid') eq 'pid 1';
    # its pid here: the child of unshare
    open my $ch, '<', "/proc/$d->{pid}/task/$d->{pid}/children" or die "children: $!";
    ($d->{inner}) = <$ch> =~ /(\d+)/;
    return $d;
}

# SIGKILL the driver. unshare goes first: it would complain when trying to
# die of its child's signal. Then the driver, no longer our child: done
# once it is gone or a zombie (whose descriptors and locks are released).
sub kill_driver {
    my ($d) = @_;
    $d->kill9;
    kill 'KILL', $d->{inner};
    my $deadline = time + 30;
    while (open my $st, '<', "/proc/$d->{inner}/stat") {
        last if <$st> =~ /\) Z /;
        die 'the driver did not die' if time > $deadline;
        select undef, undef, undef, 0.01;
    }
}

sub entries {
    my ($dir) = @_;
    opendir my $dh, $dir or return ["cannot open $dir: $!"];
    return [sort grep { !/^\.\.?$/ } readdir $dh];
}

sub maps_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/maps" or die "maps: $!";
    local $/;
    return <$fh>;
}

# The mappings, but the heap, which malloc may grow (an error text).
sub mappings_of {
    my ($pid) = @_;
    return join '', grep { !/\[heap\]$/ } split /^/, maps_of($pid);
}

subtest 'vm.memfd_noexec=2: the object is a file in a private directory, traced by path' => sub {
    my $base = "$tmp/t1";
    mkdir $base;
    my $d = hardened_driver('', TMPDIR => $base);
    $d->ok_all('provider p hardened mod', 'probe a fn fired int', 'add p a');
    is $d->cmd('enable p'), 'ok', 'enable succeeds without an executable memory file';
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    like $path, qr{^\Q$base\E/libusdt-$uid/usdt-1-\d+-\d+-hardened\.so$},
        'usdt_provider_path names a file in $TMPDIR/libusdt-UID';
    ok -f $path, 'a real file';
    my @dst = stat "$base/libusdt-$uid";
    is $dst[2] & 07777, 0700, 'the directory is mode 0700';
    is $dst[4], $uid, 'and ours';
    my $maps = maps_of($d->{inner});
    like $maps, qr/ \Q$path\E$/m, 'the process maps the object from that file';
    unlike $maps, qr{/memfd:libusdt}, 'and no memory file';

    SKIP: {
        skip $no_bpftrace, 4 if $no_bpftrace;
        my $bt = bpftrace("usdt:$path:hardened:fired { \@n = count(); \@v = sum(arg0); }");
        is $d->cmd('wait a 1 20000'), '1', 'usdt_is_enabled is 1 once bpftrace attached by path';
        is $d->cmd('fire a i:42'), 'fired 1', 'one fire';
        my $out = tracer_stop($bt);
        like $out, qr/^\@n: 1$/m, 'bpftrace, attached by path alone, counted it' or diag $out;
        like $out, qr/^\@v: 42$/m, 'with its argument';
    }

    $d->ok_all('free p');
    ok !-e $path, 'freeing the provider removed the file';
    $d->ok_all('provider q second mod', 'probe b fn two', 'add q b', 'enable q');
    my ($path2) = $d->cmd('path q') =~ /^path (\S+)$/;
    ok -f $path2, 'another provider, another file';
    is $d->close, 0, 'the driver exits cleanly';
    is_deeply entries("$base/libusdt-$uid"), [], 'nothing is left after exit';
    is_deeply entries($base), ["libusdt-$uid"], 'but the empty private directory';
};

subtest 'the first place that works is used; those that failed keep nothing' => sub {
    my $base = "$tmp/t2";
    my $xdg = "$tmp/t2-xdg";
    mkdir $base;
    mkdir $xdg;
    my $d = hardened_driver("mount -t tmpfs -o noexec tmpfs $xdg",
                            XDG_RUNTIME_DIR => $xdg, TMPDIR => $base);
    $d->ok_all('provider p second mod', 'probe a fn one', 'add p a', 'enable p');
    like $d->cmd('path p'), qr{^path \Q$base\E/libusdt-$uid/usdt-1-\d+-\d+-second\.so$},
        'a noexec $XDG_RUNTIME_DIR is passed over for $TMPDIR';
    is_deeply entries("/proc/$d->{inner}/root$xdg"), [],
        'nothing was made in $XDG_RUNTIME_DIR';
    $d->ok_all('free p');
    is $d->close, 0, 'the driver exits cleanly';
};

subtest 'every place noexec: a clear error, nothing leaked, USDT_SDT_DIR then works' => sub {
    my $setup = join ' && ',
        (map { "mount -t tmpfs -o noexec tmpfs $_" } '/tmp', '/var/tmp', '/dev/shm'),
        'mkdir /tmp/xdg /var/tmp/tmpdir /tmp/ok',
        'mount -t tmpfs tmpfs /tmp/ok';          # exec-capable, for USDT_SDT_DIR
    my $d = hardened_driver($setup, XDG_RUNTIME_DIR => '/tmp/xdg', TMPDIR => '/var/tmp/tmpdir');
    $d->ok_all('provider p nowhere mod', 'probe a fn one int', 'add p a');
    my $counts = $d->cmd('counts');
    my $maps = mappings_of($d->{inner});
    is $d->cmd('enable p'), "error cannot publish provider nowhere: executable memory files "
        . "are refused (memfd_create: Permission denied, vm.memfd_noexec=2), and no directory "
        . "could hold its SDT object: /tmp/xdg/libusdt-$uid: mounted noexec; "
        . "/var/tmp/tmpdir/libusdt-$uid: mounted noexec; /tmp/libusdt-$uid: mounted noexec; "
        . "/var/tmp/libusdt-$uid: mounted noexec; /dev/shm/libusdt-$uid: mounted noexec; "
        . "to fix it, set USDT_SDT_DIR to a directory on a file system that allows execution",
        'the message names each place, why it failed, and the fix';
    is $d->cmd('handle a'), 'handle null', 'no handle';
    is $d->cmd('path p'), 'path (null)', 'no path';
    SKIP: {
        skip "under $san, whose allocator maps memory of its own", 2 if $san;
        is $d->cmd('counts'), $counts, 'no descriptor and no mapping left';
        is mappings_of($d->{inner}), $maps, 'the same mappings as before';
    }
    my ($fds) = $d->cmd('counts') =~ /^(fds \d+)/;
    is $fds, ($counts =~ /^(fds \d+)/)[0], 'no descriptor left';
    my $root = "/proc/$d->{inner}/root";
    is_deeply entries("$root/tmp"), ['ok', 'xdg'], '/tmp: nothing of ours';
    is_deeply entries("$root/tmp/xdg"), [], '$XDG_RUNTIME_DIR: nothing';
    is_deeply entries("$root/var/tmp"), ['tmpdir'], '/var/tmp: nothing';
    is_deeply entries("$root/var/tmp/tmpdir"), [], '$TMPDIR: nothing';
    is_deeply entries("$root/dev/shm"), [], '/dev/shm: nothing';

    $d->ok_all('setenv USDT_SDT_DIR /tmp/ok/objects');
    is $d->cmd('enable p'), 'ok', 'with USDT_SDT_DIR on an exec-capable file system, enable works';
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    like $path, qr{^/tmp/ok/objects/usdt-1-\d+-\d+-nowhere\.so$}, 'the object is a file there';
    SKIP: {
        skip $no_bpftrace, 3 if $no_bpftrace;
        # the path is in the driver's mount namespace: reached through its root
        my $bt = bpftrace("usdt:$root$path:nowhere:one { \@n = count(); }");
        is $d->cmd('wait a 1 20000'), '1', 'bpftrace attached by that path';
        is $d->cmd('fire a i:1'), 'fired 1', 'one fire';
        like tracer_stop($bt), qr/^\@n: 1$/m, 'and bpftrace counted it';
    }
    $d->ok_all('free p');
    is_deeply entries("$root/tmp/ok/objects"), [], 'freeing the provider removed the file';
    is $d->close, 0, 'the driver exits cleanly';
};

subtest 'a live object is not reaped from another pid namespace; a killed one is' => sub {
    my $base = "$tmp/t4";
    mkdir $base;
    my $d = hardened_driver('', TMPDIR => $base);
    $d->ok_all('provider p alive mod', 'probe a fn one', 'add p a', 'enable p');
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    # Here pid 1 is init, a process other than the driver (pid 1 there).
    my $other = driver(_exe => $drv, USDT_SDT_DIR => "$base/libusdt-$uid");
    $other->ok_all('provider p other mod', 'probe a fn one', 'add p a', 'enable p');
    ok -f $path, "another namespace's enable in that directory left the live object";
    $other->ok_all('free p');
    kill_driver($d);
    ok -f $path, 'the killed driver left its file';
    $other->ok_all('provider p other mod', 'add p a', 'enable p');
    ok !-e $path, 'the next enable there removed it';
    $other->ok_all('free p');
    is $other->close, 0, 'the other driver exits cleanly';
    is_deeply entries("$base/libusdt-$uid"), [], 'nothing is left';
};

done_testing;
