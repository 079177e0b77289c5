# perf in file mode (USDT_SDT_DIR): the object is a real file with a
# build-id, so `perf buildid-cache --add` finds its SDT notes, `perf probe`
# makes an event of a probe, and `perf record` records it with its
# arguments. perf's cache goes to a temporary directory, and the event is
# deleted again, also when a test fails. A provider and probe named with
# '.' (my.app, req.start), which perf refuses as they are, are recorded
# by their published form, sdt_my_app:req_start.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use lib 't/lib';
use USDTTest qw(driver perf tracer_stop run_capture);

USDTTest::needs_tracers('perf');

my $tmp = tempdir(CLEANUP => 1);
my $dir = "$tmp/objects";
my @buildid = ('--buildid-dir', "$tmp/buildid");     # perf's cache, ours alone
my @perf = ('perf', @buildid);
my $exe = $ENV{USDT_TEST_EXE};
my $d = driver(USDT_SDT_DIR => $dir, $exe ? (_exe => $exe) : ());
my ($pid) = $d->cmd('pid') =~ /(\d+)/;
my @made;
END { system(@perf, 'probe', '-q', '-d', $_) for @made }

my $run = 0;    # names the fifos and data file of each case
for my $case (['perfprov', 'fired', 'perfprov', 'fired'], ['my.app', 'req.start', 'my_app', 'req_start']) {
    my ($prov, $probe, $group, $event) = @$case;
    subtest "$prov:$probe as sdt_$group:$event" => sub {
        $run++;
        $d->ok_all("provider p $prov mod", "probe a fn $probe int int", 'add p a', 'enable p');
        my ($path) = $d->cmd('path p') =~ /^path (\S+)/;
        like $path, qr{^\Q$dir\E/usdt-$pid-\d+-\d+-$group\.so$}, 'the object is a file in USDT_SDT_DIR';
        is((stat $dir)[2] & 07777, 0700, 'the directory is private (0700)');
        is((stat $path)[2] & 07777, 0400, 'the file is read-only to its owner');
        my $maps = do { open my $fh, '<', "/proc/$pid/maps" or die; local $/; <$fh> };
        like $maps, qr/ \Q$path\E$/m, 'the process maps it by its path, where perf and bpftrace find it';

        my ($st, $out) = run_capture(@perf, 'buildid-cache', '--add', $path);
        is $st, 0, 'perf buildid-cache --add' or diag $out;
        ($st, $out) = run_capture(@perf, 'probe', '-x', $path, '-a', "sdt_$group:$event");
        is $st, 0, "perf probe sdt_$group:$event" or diag $out;
        push @made, "sdt_$group:*";

        my $data = "$tmp/perf$run.data";
        # perf record starts with its events off (-D -1) and turns them on when
        # told through its control fifo; its "ack" is the handshake: from then on,
        # every fire is recorded.
        POSIX::mkfifo("$tmp/ctl$run", 0600) and POSIX::mkfifo("$tmp/ack$run", 0600) or die "mkfifo: $!";
        my $rec = perf(@buildid, 'record', '-N', '-D', '-1', '--control', "fifo:$tmp/ctl$run,$tmp/ack$run",
                               '-e', "sdt_$group:$event", '-p', $pid, '-o', $data);
        open my $ctl, '>', "$tmp/ctl$run" or die "ctl fifo: $!";
        open my $ack, '<', "$tmp/ack$run" or die "ack fifo: $!";
        $ctl->autoflush(1);
        print $ctl "enable\n";
        is scalar(<$ack>), "ack\n", 'perf record enabled its events';
        is $d->cmd('wait a 1 20000'), '1', 'usdt_is_enabled is 1 while perf records (its semaphore)';
        is $d->cmd('fire a i:-7 i:1234567'), 'fired 1';
        is $d->cmd('fire a i:8 i:9'), 'fired 1';
        my $recorded = tracer_stop($rec);
        like $recorded, qr/Captured and wrote .* \(2 samples\)/, "perf record captured 2 samples";
        is $d->cmd('wait a 0 20000'), '0', 'and 0 once perf stopped';
        ($st, $out) = run_capture(@perf, 'script', '-i', $data);
        is $st, 0, 'perf script';
        my @events = $out =~ /sdt_\Q$group:$event\E: \(\w+\) (arg1=\S+ arg2=\S+)/g;
        is_deeply \@events, ['arg1=-7 arg2=1234567', 'arg1=8 arg2=9'], 'both fires, with their arguments'
            or diag $out;

        ($st, $out) = run_capture(@perf, 'probe', '-q', '-d', "sdt_$group:*");
        is $st, 0, 'the event is deleted';
        pop @made;
        $d->ok_all('free p', 'release a', 'forget a');
        ok !-e $path, 'freeing the provider removed its file';
    };
}
is $d->close, 0;
opendir my $dh, $dir or die;
is_deeply [grep { !/^\./ } readdir $dh], [], 'nothing is left in the directory';
done_testing;
