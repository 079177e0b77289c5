# The names bindings use. DTrace takes any name within its lengths, and
# so does the library: a probe or provider name may start with a digit
# (node-dtrace-provider's own tests name a probe "32probe", and ignore
# add_probe's result, so a refusal there made the probe vanish), and may
# hold '.', ':', spaces, UTF-8 or control characters. An SDT note carries
# the name's published form, [A-Za-z0-9_] only: '-' as "__", any other
# byte outside the set as '_' ("my.app" is my_app). bpftrace and gdb list
# and trace such probes by that form. Two names that publish alike ("a-b"
# and "a__b", "a.b" and "a_b") would be one probe to a tracer with two
# semaphores, so the second add fails with the original's "already
# exists" message; removing goes by the exact name.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(bpftrace driver run_capture tracer_start tracer_stop);

my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
my ($pid) = $d->cmd('pid') =~ /^pid (\d+)$/;

subtest 'a probe named 32probe, in a provider named 4you, is traced' => sub {
    $d->ok_all('provider p 4you mod', 'probe a fn 32probe int', 'add p a', 'enable p');
    my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
    my ($st, $list) = run_capture('bpftrace', '-l', '-p', $pid, 'usdt:*:4you:*');
    is $list, "usdt:$path:4you:32probe\n", 'bpftrace -l lists it';
    my $bt = bpftrace('-p', $pid, 'usdt::4you:32probe { @n = count(); @v = sum(arg0); }');
    is $d->cmd('fire a i:32'), 'fired 1';
    like tracer_stop($bt), qr/^\@n: 1\n+\@v: 32$/m, 'bpftrace counts its fire, with its argument';
    my $g = tracer_start('gdb', '-batch', '-nx', '-p', $pid, '-ex', 'info probes stap 4you');
    my $out = tracer_stop($g, 'ZERO');
    like $out, qr/^stap\s+4you\s+32probe\s/m, 'gdb lists it';
    $d->ok_all('free p');
};

subtest 'names that publish alike are duplicates; removal goes by the exact name' => sub {
    $d->ok_all('provider q dupes mod', 'probe a fn a-b int', 'probe b fn a__b int',
               'probe c other a__b int', 'add q a');
    is $d->cmd('add q b'), 'error probe named dupes:mod:fn:a__b already exists',
        '"a__b" after "a-b" in one function: already exists';
    is $d->cmd('add q c'), 'ok', 'in another function it is another site of the probe';
    is $d->cmd('remove q b'), 'error failed to remove probe dupes:mod:fn:a__b',
        'removing "a__b" does not remove "a-b"';
    is $d->cmd('remove q a'), 'ok';
    is $d->cmd('add q b'), 'ok', 'once "a-b" is gone, "a__b" can be added';
    $d->ok_all('free q');
};

subtest 'any name DTrace loads is accepted and published as [A-Za-z0-9_]' => sub {
    # name as given to the library (driver-encoded) => as published
    my @providers = (['my.app' => 'my_app'], ['a:b%20c' => 'a_b_c'],
                     ['caf%c3%a9' => 'caf__'], ['x%0ay' => 'x_y'], ['n-s' => 'n__s']);
    my @probes = (['req.start' => 'req_start'], ['a:b' => 'a_b'], ['%24x%40y' => '_x_y'],
                  ['sp%20ace' => 'sp_ace'], ['%c3%a9t%c3%a9' => '__t__'], ['l%0af' => 'l_f']);
    my (%want, $i);
    for my $pv (@providers) {
        my $p = 'p' . $i++;
        $d->ok_all("provider $p $pv->[0] m%0a.d");
        my $j = 0;
        for my $pr (@probes) {
            $d->ok_all("probe $p$j f%20n.x\$ $pr->[0] int", "add $p $p$j");
            $want{"$pv->[1]:$pr->[1]"} = 1;
            $j++;
        }
        is $d->cmd("enable $p"), 'ok', "enable provider $pv->[0]";
    }
    my @paths = map { ($d->cmd("path p$_") =~ /^path (\S+)$/)[0] } 0 .. $#providers;
    my %notes;
    for my $path (@paths) {
        my (undef, $out) = run_capture('readelf', '-nW', $path);
        $notes{"$1:$2"}++ while $out =~ /Provider: (\S+)\s+Name: (\S+)/g;
        my (undef, $syms) = run_capture('readelf', '--dyn-syms', '-W', $path);
        unlike $syms, qr/[^\x20-\x7e\n]|\bf n/, "$path: symbol names are published forms too";
    }
    is_deeply \%notes, \%want, 'every note carries the published names, once each';
    my $maps = do { open my $fh, '<', "/proc/$pid/maps" or die; local $/; <$fh> };
    my @bad = grep { !/^[0-9a-f]+-[0-9a-f]+ [-rwxsp]{4} [0-9a-f]+ \S+ \d+\s*(\S.*)?$/ } split /\n/, $maps;
    is_deeply \@bad, [], '/proc/PID/maps stays one line per mapping (a newline is not in a memory file\'s name)';
    like $maps, qr{/memfd:libusdt:x_y }, 'the memory file is named after the published form';

    my ($st, $list) = run_capture('bpftrace', '-l', '-p', $pid, 'usdt:*:my_app:*');
    is_deeply [sort $list =~ /:my_app:(\S+)$/mg], [sort map { $_->[1] } @probes],
        'bpftrace -l lists my_app\'s probes by their published names';
    my $bt = bpftrace('-p', $pid, 'usdt::my_app:req_start { @n = count(); @v = sum(arg0); }');
    is $d->cmd('fire p00 i:41'), 'fired 1';
    like tracer_stop($bt), qr/^\@n: 1\n+\@v: 41$/m, 'bpftrace traces my.app:req.start as usdt::my_app:req_start';
    my $g = tracer_start('gdb', '-batch', '-nx', '-p', $pid, '-ex', 'info probes stap a_b_c');
    like tracer_stop($g, 'ZERO'), qr/^stap\s+a_b_c\s+sp_ace\s/m, 'gdb lists "a:b c":"sp ace" as a_b_c sp_ace';
    $d->ok_all(map { "free p$_" } 0 .. $#providers);
};

subtest 'published alike is a duplicate: "req.start" after "req_start"' => sub {
    $d->ok_all('provider q dotty mod', 'probe a fn req_start int', 'probe b fn req.start int',
               'probe c fn req%20start int', 'add q a');
    is $d->cmd('add q b'), 'error probe named dotty:mod:fn:req.start already exists';
    is $d->cmd('add q c'), 'error probe named dotty:mod:fn:req start already exists';
    is $d->cmd('pfields q'), 'name dotty module mod probes 1 enabled 0 error set file null',
        'the provider is as it was';
    $d->ok_all('free q');
};

subtest 'file mode: a provider named with "/" and ".." stays in its directory' => sub {
    my $tmp = tempdir(CLEANUP => 1);
    my $f = driver(USDT_SDT_DIR => "$tmp/objects", $ENV{USDT_TEST_EXE} ? (_exe => $ENV{USDT_TEST_EXE}) : ());
    $f->ok_all('provider p ..%2F..%2Fx mod', 'probe a fn p int', 'add p a', 'enable p');
    my ($path) = $f->cmd('path p') =~ /^path (\S+)$/;
    like $path, qr{^\Q$tmp\E/objects/usdt-\d+-\d+-\d+-______x\.so$}, "the file is $path";
    ok -f $path, 'and it is there';
    $f->ok_all('free p');
    is $f->close, 0;
    opendir my $dh, $tmp or die;
    is_deeply [sort grep { !/^\./ } readdir $dh], ['objects'], 'nothing was made outside it';
};

is $d->close, 0;
done_testing;
