# Lifetime and hygiene: enable/disable cycles and providers made and freed
# on the fly leak no memory, descriptor or mapping; re-enabling the same
# probes reuses the published object, a changed set replaces it; nothing
# is left on disk, also after SIGKILL; /tmp mounted noexec does not matter.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(driver run_capture);

my $exe = $ENV{USDT_TEST_EXE};
my @exe = $exe ? (_exe => $exe) : ();
my $tmp = tempdir(CLEANUP => 1);
# A sanitizer's allocator maps memory of its own and keeps freed blocks in
# quarantine: growth is only measured without one (valgrind and
# LeakSanitizer check leaks there).
my $san = $ENV{USDT_TEST_SANITIZER};
my $san_why = $san ? "under $san, whose allocator maps memory of its own and keeps freed blocks: mappings and RSS are not compared" : undef;

subtest '100 000 enable/disable cycles: no growth' => sub {
    my $d = driver(@exe);
    $d->ok_all('provider p cycles mod', 'probe a fn p int str', 'add p a', 'cycle p 1000');
    my $counts = $d->cmd('counts');
    my ($rss) = $d->cmd('rss') =~ /(\d+)/;
    is $d->cmd('cycle p 100000'), 'ok';
    my ($rss2) = $d->cmd('rss') =~ /(\d+)/;
    SKIP: {
        skip $san_why, 2 if $san;
        is $d->cmd('counts'), $counts, 'descriptors and mappings as before';
        cmp_ok $rss2 - $rss, '<', 256, "RSS grew by less than 256 KiB ($rss -> $rss2 KiB)";
    }
    $d->ok_all('free p');
    is $d->close, 0;
};

subtest '10 000 providers created, enabled and freed: back to the start' => sub {
    my $d = driver(@exe);
    $d->ok_all('churn 10');
    my $counts = $d->cmd('counts');
    my ($rss) = $d->cmd('rss') =~ /(\d+)/;
    is $d->cmd('churn 10000'), 'ok';
    my ($rss2) = $d->cmd('rss') =~ /(\d+)/;
    SKIP: {
        skip $san_why, 2 if $san;
        is $d->cmd('counts'), $counts, 'descriptors and mappings as before';
        cmp_ok $rss2 - $rss, '<', 512, "RSS grew by less than 512 KiB ($rss -> $rss2 KiB)";
    }
    is $d->close, 0;
};

subtest 're-enable reuses the object; a changed probe set replaces it' => sub {
    my $d = driver(@exe);
    my $start = $d->cmd('counts');
    $d->ok_all('provider p reuse mod', 'probe a fn one', 'add p a', 'enable p');
    my $path = $d->cmd('path p');
    my $h = $d->cmd('handle a');
    $d->ok_all('disable p');
    is $d->cmd('path p'), 'path (null)', 'no path while disabled';
    $d->ok_all('enable p');
    is $d->cmd('path p'), $path, 'the same object';
    is $d->cmd('handle a'), $h, 'the same handle and stub';
    $d->ok_all('probe b fn two', 'add p b', 'disable p', 'enable p');
    isnt $d->cmd('path p'), $path, 'a new object for the new probe set';
    my $counts = $d->cmd('counts');
    $d->ok_all('free p', 'release a', 'release b');
    my ($fds) = $d->cmd('counts') =~ /^(fds \d+)/;
    is $fds, ($start =~ /^(fds \d+)/)[0], 'freeing the provider closed everything';
    SKIP: {
        skip $san_why, 1 if $san;
        is $d->cmd('counts'), $start, 'and unmapped everything';
    }
    is $d->close, 0;
};

subtest 'memory file: nothing on disk; the maps line names the provider' => sub {
    my $d = driver(@exe);
    $d->ok_all('provider p inmem mod', 'probe a fn one', 'add p a', 'enable p');
    my ($pid) = $d->cmd('pid') =~ /(\d+)/;
    open my $maps, '<', "/proc/$pid/maps" or die;
    my @ours = grep { m{/memfd:libusdt:inmem \(deleted\)$} } <$maps>;
    is scalar @ours, 3, 'three segments of a memory file, already deleted';
    like $d->cmd('path p'), qr{^path /proc/$pid/fd/\d+$}, 'reachable as /proc/PID/fd/N';
    my ($fd) = $d->cmd('path p') =~ m{/(\d+)$};
    my $flags = do { open my $fi, '<', "/proc/$pid/fdinfo/$fd" or die; local $/; <$fi> };
    my ($f) = $flags =~ /^flags:\s+(\d+)/m;
    ok oct($f) & 02000000, 'the descriptor is close-on-exec';
    $d->kill9;
};

subtest 'file mode: SIGKILL leaves a file that the next enable reaps' => sub {
    my $dir = "$tmp/objects";
    my $d = driver(@exe, USDT_SDT_DIR => $dir);
    $d->ok_all('provider p killed mod', 'probe a fn one', 'add p a', 'enable p');
    my ($path) = $d->cmd('path p') =~ /^path (\S+)/;
    ok -f $path, 'the object file exists while enabled';
    $d->kill9;
    ok -f $path, 'a killed process leaves it behind';
    my $d2 = driver(@exe, USDT_SDT_DIR => $dir);
    $d2->ok_all('provider p other mod', 'probe a fn one', 'add p a', 'enable p');
    ok !-e $path, 'the next enable in that directory removed it';
    $d2->ok_all('free p', 'release a');
    is $d2->close, 0;
    opendir my $dh, $dir or die;
    is_deeply [grep { !/^\./ } readdir $dh], [], 'and the clean exit left nothing';
};

subtest 'file mode refuses a directory others can write, with a clear error' => sub {
    my $dir = "$tmp/open";
    mkdir $dir, 0777;
    chmod 0777, $dir;
    my $d = driver(@exe, USDT_SDT_DIR => $dir);
    $d->ok_all('provider p prov mod', 'probe a fn one', 'add p a');
    is $d->cmd('enable p'), "error USDT_SDT_DIR=$dir: must be a directory owned by this user with mode 0700 (others must not write there)";
    is $d->cmd('handle a'), 'handle null';
    is $d->close, 0;
};

subtest '/tmp mounted noexec: memory files work, file mode there says why not' => sub {
    plan skip_all => 'not root: a private mount namespace (unshare -m) needs root' if $> != 0;
    my $top = USDTTest::top_dir();
    my $drv = $exe // "$top/test_usdt";
    my $script = join '\n', 'provider p noexec mod', 'probe a fn one', 'add p a', 'enable p',
                            'isenabled a', 'fire a', 'free p';
    # the driver is opened first: the tree itself may live under /tmp
    my ($st, $out) = run_capture('unshare', '-m', 'sh', '-c',
        "exec 3<$drv && mount -t tmpfs -o noexec tmpfs /tmp && printf '$script\\n' | /proc/self/fd/3 && " .
        "printf '$script\\n' | USDT_SDT_DIR=/tmp/usdt /proc/self/fd/3");
    is $st, 0, 'ran in a private mount namespace' or diag $out;
    is $out, "ok\nok\nok\nok\n0\nfired 1\nok\n" .
             "ok\nok\nok\nerror USDT_SDT_DIR=/tmp/usdt: its file system is mounted noexec, so the probes cannot be mapped; unset USDT_SDT_DIR to use a memory file\n0\nfired 1\nok\n";
};

done_testing;
