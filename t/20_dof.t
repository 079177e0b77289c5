# The DOF documents the library builds: every one passes the kernel's
# checks (replayed by t/lib/DOFReader.pm), carries exactly the probes,
# names, types and mappings given, and points at instructions that are
# what DTrace's fasttrap expects, read back from the live stub memory.
use strict;
use warnings;
no warnings 'portable';    # 64-bit addresses in hex
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(bpftrace driver tracer_missing tracer_stop tracer_wait);
use DOFReader qw(parse parse_file build);

my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
my ($arch) = $d->cmd('arch') =~ /^arch (\S+)/;
my ($pid) = $d->cmd('pid') =~ /^pid (\d+)/;
my $tmp = tempdir(CLEANUP => 1);

# What the stub holds around each site, per architecture (see the .s files).
my $expect = {
    x86_64 => { model => 2, ptr => 8, probe_off => 25, enabled_off => 17,
                probe_bytes => '90 90 90 90 90',
                # setne %al; nop (the site); ret; the zero semaphore
                enabled_at => -3, enabled_bytes => '0f 95 c0 90 c3 00',
                sdt_off => 37, sdt_bytes => '0f 1f 44 00 00' },
    i386   => { model => 1, ptr => 4, probe_off => 38, enabled_off => 18,
                probe_bytes => '90 90 90 90 90',
                # xor %eax,%eax; nop (the site); nop; nop; ret
                enabled_at => -2, enabled_bytes => '33 c0 90 90 90 c3',
                sdt_off => 33, sdt_bytes => '0f 1f 44 00 00' },
}->{$arch};

my $n = 0;
sub dof_of {
    my ($prov) = @_;
    my $file = "$tmp/" . $n++ . '.dof';
    my $answer = $d->cmd("dof $prov $file");
    die "dof $prov: $answer" unless $answer =~ /^ok (\d+)$/;
    my $size = $1;
    my ($doc, $err) = parse_file($file, encoding => 'host', ptrsize => $expect->{ptr});
    is $err, undef, "the kernel's checks pass ($size bytes)";
    is -s $file, $size;
    return $doc;
}

sub mem {
    my ($addr, $len) = @_;
    my $answer = $d->cmd(sprintf 'mem 0x%x %d', $addr, $len);
    $answer =~ s/^mem //;
    return $answer;
}

# Checks every probe record against what was defined, and the bytes at
# every offset against what fasttrap expects there.
sub check_probes {
    my ($doc, @defs) = @_;
    is scalar @{ $doc->{probes} }, scalar @defs, 'one record per probe';
    my $i = 0;
    my $argidx = 0;
    for my $def (@defs) {
        my $p = $doc->{probes}[$i++];
        my ($func, $name, @types) = @$def;
        is "$p->{func}:$p->{name}", "$func:$name";
        is_deeply $p->{native}, \@types, "$name: native types";
        is_deeply $p->{translated}, \@types, "$name: translated types";
        is_deeply $p->{mapping}, [0 .. $#types], "$name: identity mapping";
        is $p->{argidx}, $argidx, "$name: argument index" unless $doc->{subset};
        $argidx += @types;
        is_deeply $p->{offsets}, [$expect->{probe_off}], "$name: probe offset";
        is_deeply $p->{enoffsets}, [$expect->{enabled_off}], "$name: is-enabled offset";
        is mem($p->{addr} + $expect->{probe_off}, 5), $expect->{probe_bytes},
            "$name: a nop sled at the probe offset";
        is mem($p->{addr} + $expect->{enabled_off} + $expect->{enabled_at}, 6),
            $expect->{enabled_bytes}, "$name: the is-enabled offset is a nop before the return";
        is mem($p->{addr} + $expect->{sdt_off}, 5), $expect->{sdt_bytes},
            "$name: the SDT site is a 5-byte nop";
    }
}

subtest 'one probe, no arguments: the layout of the reference, byte for byte' => sub {
    $d->ok_all('provider p1 p1 mod', 'probe a main noargs', 'add p1 a');
    my $file = "$tmp/one.dof";
    like $d->cmd("dof p1 $file"), qr/^ok 376$/;
    open my $fh, '<:raw', $file or die;
    my $bytes = do { local $/; <$fh> };
    my ($doc) = parse($bytes, encoding => 'host', ptrsize => $expect->{ptr});
    my $same = build(provider => 'p1', model => $expect->{model}, encoding => 1,
                     version => 2,
                     probes => [ { func => 'main', name => 'noargs', types => [],
                                   addr => $doc->{probes}[0]{addr},
                                   off => $expect->{probe_off},
                                   enoff => $expect->{enabled_off} } ]);
    is unpack('H*', $bytes), unpack('H*', $same),
        'header, section order, alignment, string table, records, attributes';
    is join(' ', map { sprintf '%d@0x%x+%d', $_->{type}, $_->{offset}, $_->{size} }
            @{ $doc->{sections} }),
        '8@0x100+16 16@0x110+48 17@0x140+1 18@0x144+4 26@0x148+4 15@0x14c+44';
    is $doc->{version}, 2;
    is $doc->{model}, $expect->{model};
    is $doc->{provider}{name}, 'p1';
    is sprintf('%08x', $doc->{provider}{attrs}{$_}), '06060500', "$_ attributes Stable/Stable/Common"
        for qw(provider module function name args);
    check_probes($doc, ['main', 'noargs']);
    $d->ok_all('free p1');
};

subtest 'mixed types, 0 to 32 arguments, enabled or not' => sub {
    $d->ok_all('provider m mixed mod');
    my @defs;
    for my $argc (0 .. 32) {
        my @types = map { $_ % 3 == 0 ? 'char *' : $_ % 3 == 1 ? 'int' : 'uint64_t' } 0 .. $argc - 1;
        my @tok = map { $_ eq 'char *' ? 'str' : $_ } @types;
        $d->ok_all("probe m$argc fn$argc args-$argc @tok", "add m m$argc");
        push @defs, ["fn$argc", "args-$argc", @types];
    }
    check_probes(dof_of('m'), @defs);
    $d->ok_all('enable m');
    my $doc = dof_of('m');
    check_probes($doc, @defs);
    my $h = $d->cmd('handle m0');
    my ($isenabled) = $h =~ /^handle (0x[0-9a-f]+)/;
    is sprintf('0x%x', $doc->{probes}[0]{addr}), $isenabled,
        'an enabled provider\'s DOF points at its live stubs';
    $d->ok_all('free m');
};

subtest 'after remove and re-enable the DOF follows the probe list' => sub {
    $d->ok_all('provider r rm mod', 'probe r1 f one int', 'probe r2 f two str',
               'probe r3 f three', 'add r r1', 'add r r2', 'add r r3', 'enable r');
    check_probes(dof_of('r'), ['f', 'one', 'int'], ['f', 'two', 'char *'], ['f', 'three']);
    $d->ok_all('remove r r2', 'disable r', 'enable r');
    check_probes(dof_of('r'), ['f', 'one', 'int'], ['f', 'three']);
    $d->ok_all('free r', 'release r2', 'release r2', 'forget r2');
};

subtest 'long names at the limits and a NULL type' => sub {
    my $prov = 'p' x 53;
    my $func = 'f' x 127;
    my $name = 'n' x 63;
    my $type = 't' x 127;
    $d->ok_all("provider l $prov mod", "probe l1 $func $name $type null", 'add l l1');
    my $doc = dof_of('l');
    is $doc->{provider}{name}, $prov;
    check_probes($doc, [$func, $name, $type, 'long']);
    $d->ok_all('free l');
};

subtest 'names DTrace loads go into the DOF as written, not in their published form' => sub {
    $d->ok_all('provider o my.app%3Av2 m%20x', 'probe o1 f.n req.start int',
               'probe o2 %24f a%3Ab%20c%0a', 'probe o3 f req-start', 'add o o1', 'add o o2', 'add o o3');
    my $doc = dof_of('o');
    is $doc->{provider}{name}, 'my.app:v2';
    check_probes($doc, ['f.n', 'req.start', 'int'], ['$f', "a:b c\n"], ['f', 'req-start']);
    $d->ok_all('free o');
};

# Many probes: the provider is enabled and published, every handle is
# live, the DOF document names exactly those stubs, and the last probe
# fires into a tracer.
subtest '2000 probes: enabled, published, each handle live and in the DOF' => sub {
    $d->ok_all('provider big big mod');
    my @defs;
    for my $i (1 .. 2000) {
        $d->ok_all("probe b$i f$i p$i int str", "add big b$i");
        push @defs, ["f$i", "p$i", 'int', 'char *'];
    }
    $d->ok_all('enable big');
    is $d->cmd('pfields big'), 'name big module mod probes 2000 enabled 1 error null file set',
        'the provider is enabled, with its object';
    my %handle;     # is-enabled address => probe number
    my @null;
    for my $i (1 .. 2000) {
        my $h = $d->cmd("handle b$i");
        if ($h =~ /^handle (0x[0-9a-f]+) 0x[0-9a-f]+$/) { $handle{hex $1} = $i } else { push @null, $i }
    }
    is_deeply \@null, [], 'every probe has a handle';
    is scalar keys %handle, 2000, 'each its own stub';
    my $doc = dof_of('big');
    is scalar @{ $doc->{probes} }, 2000;
    is_deeply [ map { $handle{$_->{addr}} // 'not a live stub' } @{ $doc->{probes} } ], [ 1 .. 2000 ],
        "each probe's DOF address is its live handle's stub, in order";
    # spot-check the records and the bytes of every 97th probe
    my @pick = grep { $_ % 97 == 0 } 0 .. 1999;
    check_probes({ subset => 1, probes => [ @{ $doc->{probes} }[@pick] ] }, @defs[@pick]);
    is_deeply [ map { $_->{argidx} } @{ $doc->{probes} } ], [ map { 2 * $_ } 0 .. 1999 ],
        'argument indexes run on across probes';
};

# On i386 the driver runs under qemu, which the tracers cannot follow.
SKIP: {
    my $why = $arch ne 'x86_64' ? "tracers are not run on $arch (the driver runs under qemu)"
            : tracer_missing('bpftrace');
    skip $why, 1 if $why;
    subtest 'the 2000th probe fires into bpftrace' => sub {
        my $bt = bpftrace('-p', $pid, 'usdt::big:p2000 { printf("p2000 %lld %s\n", arg0, str(arg1)); }');
        is $d->cmd('wait b2000 1 20000'), '1', 'bpftrace attached: it is enabled';
        is $d->cmd('isenabled b1999'), '0', 'the one before it is not';
        is $d->cmd('guarded b2000 1 i:2000 s:last'), 'fired 1';
        ok tracer_wait($bt, qr/^p2000 2000 last$/m), 'bpftrace printed it';
        like tracer_stop($bt), qr/^p2000 2000 last$/m;
        is $d->cmd('wait b2000 0 20000'), '0';
    };
}
$d->ok_all('free big');

subtest 'usdt_provider_dof errors' => sub {
    $d->ok_all('provider e empty mod');
    is $d->cmd("dof e $tmp/e.dof"), 'error no probes defined';
    $d->ok_all('free e');
};

is $d->close, 0;
done_testing;
