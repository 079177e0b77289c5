#!/usr/bin/perl
# A test of the test suite's own tool, not of the library: the Perl DOF
# reader (t/lib/DOFReader.pm) that t/20_dof.t and the fuzzer's check use.
# Documents that DOFReader::build lays out as the library does parse back
# to exactly what went in, in every data model and byte order; and each
# rule the kernel applies (and each the library adds) refuses a document
# broken in that one way, with its own message. No library code runs here.
#
# Run: prove -I t/lib t/25_dof_reader_selftest.t

use strict;
use warnings;
no warnings 'portable';    # 64-bit hex constants in the wrap tests
use Test::More;
use File::Temp qw(tempfile);
use DOFReader qw(parse parse_file dump build patch patch_field);

note 'the Perl DOF reader of the test suite, checked on its own: no library code runs here';

# --- helpers -----------------------------------------------------------------

# The example of the spec, section 3.2: provider p1, one probe main:noargs.
my %EXAMPLE = (
    provider => 'p1',
    probes   => [ { addr => 0x1000, func => 'main', name => 'noargs',
                    types => [], off => 39, enoff => 13 } ],
);
my $base = build(%EXAMPLE);
my ($base_doc) = parse($base);

# Record offsets in a document, found by parsing its valid original.
sub section_at { my ($i) = @_; return 0x40 + 32 * $i }
sub probe_at {
    my ($doc, $j) = @_;
    return $doc->{sections}[ $doc->{provider}{links}{probes} ]{offset} + 48 * $j;
}
sub provider_at {
    my ($doc) = @_;
    return $doc->{sections}[ $doc->{provider}{section} ]{offset};
}

sub set_header   { my ($b, $f, $v) = @_; return patch_field($b, 0, header => $f, $v) }
sub set_section  { my ($b, $i, $f, $v) = @_; return patch_field($b, section_at($i), section => $f, $v) }
sub set_provider { my ($b, $f, $v) = @_; return patch_field($b, provider_at($base_doc), provider => $f, $v) }
sub set_probe    { my ($b, $j, $f, $v) = @_; return patch_field($b, probe_at($base_doc, $j), probe => $f, $v) }

# The parts of a parsed probe a user of the library cares about.
sub probe_view {
    my ($p) = @_;
    return { map { $_ => $p->{$_} } qw(addr func name nargc xargc native
        translated mapping offsets enoffsets) };
}

sub refused {
    my ($bytes, $want, $name, %opt) = @_;
    my ($doc, $err) = parse($bytes, %opt);
    ok(!defined $doc, "$name: refused");
    is($err, $want, "$name: message");
}

sub accepted {
    my ($bytes, $name, %opt) = @_;
    my ($doc, $err) = parse($bytes, %opt);
    ok($doc, "$name: accepted") or diag("error: $err");
    return $doc;
}

# A provider with one probe for each argument count 0 .. 32, types
# alternating int / char *.
sub many_args_spec {
    my (%over) = @_;
    my @probes = map {
        my $n = $_;
        { addr => 0x10000 + 32 * $n, func => "f$n", name => "args$n",
          types => [ map { $_ % 2 ? 'char *' : 'int' } 0 .. $n - 1 ],
          off => 16, enoff => 8 }
    } 0 .. 32;
    return (provider => 'manyargs', probes => \@probes, %over);
}

# --- valid documents ---------------------------------------------------------

subtest 'one probe without arguments parses to exactly what was built' => sub {
    my $doc = accepted($base, 'p1 main:noargs');
    is($doc->{$_->[0]}, $_->[1], "header $_->[0]") for
        [model => 2], [encoding => 1], [version => 2], [difvers => 2],
        [difireg => 8], [diftreg => 8], [flags => 0], [hdrsize => 64],
        [secsize => 32], [secnum => 6], [secoff => 64], [loadsz => 376],
        [filesz => 376], [pad => 0];
    is_deeply($doc->{sections}, [
        { index => 0, type => 8,  align => 1, flags => 1, entsize => 0,  offset => 0x100, size => 16 },
        { index => 1, type => 16, align => 8, flags => 1, entsize => 48, offset => 0x110, size => 48 },
        { index => 2, type => 17, align => 1, flags => 1, entsize => 1,  offset => 0x140, size => 1 },
        { index => 3, type => 18, align => 4, flags => 1, entsize => 4,  offset => 0x144, size => 4 },
        { index => 4, type => 26, align => 4, flags => 1, entsize => 4,  offset => 0x148, size => 4 },
        { index => 5, type => 15, align => 4, flags => 1, entsize => 0,  offset => 0x14c, size => 44 },
    ], 'sections');
    is($doc->{provider}{name}, 'p1', 'provider name');
    is_deeply($doc->{provider}{attrs}, { map { $_ => 0x06060500 }
        qw(provider module function name args) }, 'attributes');
    is_deeply($doc->{provider}{links},
        { strtab => 0, probes => 1, prargs => 2, proffs => 3, prenoffs => 4 }, 'links');
    is(scalar @{ $doc->{providers} }, 1, 'one provider');
    is_deeply([ map { probe_view($_) } @{ $doc->{probes} } ], [ {
        addr => 0x1000, func => 'main', name => 'noargs', nargc => 0, xargc => 0,
        native => [], translated => [], mapping => [], offsets => [39],
        enoffsets => [13] } ], 'probe');
    is(substr($base, 0x100, 16), "\0p1\0main\0noargs\0", 'string table bytes');
    is(substr($base, 0x140, 1), "\0", 'PRARGS is a single 0 byte when no probe has arguments');
};

subtest 'the layout of the spec example (section 3.2)' => sub {
    # Section 3.3's string table for p1 / main:noargs is 16 bytes, so the
    # library's layout for it ends at 376. The offsets section 3.2 quotes
    # (strtab of 21 bytes ... loadsz 384) are those of a 21-byte table: a
    # 7-character provider name gives exactly that layout.
    my $doc = accepted(build(%EXAMPLE, provider => 'libusdt'), 'libusdt main:noargs');
    is_deeply([ map { [ $_->{offset}, $_->{size} ] } @{ $doc->{sections} } ],
        [ [0x100, 21], [0x118, 48], [0x148, 1], [0x14c, 4], [0x150, 4], [0x154, 44] ],
        'strtab 0x100 (21), probes 0x118 (48), prargs 0x148 (1), proffs 0x14c (4), '
        . 'prenoffs 0x150 (4), provider 0x154 (44)');
    is($doc->{loadsz}, 384, 'loadsz 384');
    is($doc->{filesz}, 384, 'filesz 384');
    is(length build(%EXAMPLE, provider => 'libusdt'), 384, 'document is loadsz bytes long');
    is_deeply([ map { [ $_->{offset}, $_->{size} ] } @{ $base_doc->{sections} } ],
        [ [0x100, 16], [0x110, 48], [0x140, 1], [0x144, 4], [0x148, 4], [0x14c, 44] ],
        'p1: the same rules with a 16-byte string table');
};

subtest 'probes with 0 to 32 arguments of mixed types' => sub {
    my $doc = accepted(build(many_args_spec()), '33 probes');
    my @probes = @{ $doc->{probes} };
    is(scalar @probes, 33, '33 probes');
    my $argidx = 0;
    for my $n (0 .. 32) {
        my @types = map { $_ % 2 ? 'char *' : 'int' } 0 .. $n - 1;
        is_deeply(probe_view($probes[$n]), {
            addr => 0x10000 + 32 * $n, func => "f$n", name => "args$n",
            nargc => $n, xargc => $n, native => \@types, translated => \@types,
            mapping => [ 0 .. $n - 1 ], offsets => [16], enoffsets => [8],
        }, "probe $n");
        is($probes[$n]{argidx}, $argidx, "probe $n: argidx counts earlier arguments");
        is($probes[$n]{offidx}, $n, "probe $n: offidx is its ordinal");
        $argidx += $n;
    }
    is($doc->{sections}[2]{size}, 528, 'PRARGS holds 0 + 1 + ... + 32 bytes');
};

subtest 'every data model and byte order' => sub {
    for my $model (1, 2) {
        for my $encoding (1, 2) {
            my $label = ($model == 2 ? 'LP64' : 'ILP32') . ' ' . ($encoding == 2 ? 'MSB' : 'LSB');
            my $bytes = build(many_args_spec(model => $model, encoding => $encoding));
            is(substr($bytes, 24, 4), $encoding == 2 ? "\0\0\0\x20" : "\x20\0\0\0",
                "$label: integers are written in that byte order");
            my $doc = accepted($bytes, $label);
            is($doc->{model}, $model, "$label: model");
            is($doc->{encoding}, $encoding, "$label: encoding");
            is_deeply([ map { probe_view($_) } @{ $doc->{probes} } ],
                [ map { probe_view($_) } @{ (parse(build(many_args_spec())))[0]{probes} } ],
                "$label: same probes as LP64 LSB");
        }
    }
};

subtest '2000 probes' => sub {
    my @probes = map { { addr => 0x400000 + 32 * $_, func => "func$_", name => "probe$_",
                         types => [ ('int') x ($_ % 4) ], off => 16, enoff => 8 } } 0 .. 1999;
    my $doc = accepted(build(provider => 'big', probes => \@probes), '2000 probes');
    is(scalar @{ $doc->{probes} }, 2000, 'all 2000 probes read');
    is_deeply(probe_view($doc->{probes}[1999]), {
        addr => 0x400000 + 32 * 1999, func => 'func1999', name => 'probe1999',
        nargc => 3, xargc => 3, native => [ ('int') x 3 ], translated => [ ('int') x 3 ],
        mapping => [0, 1, 2], offsets => [16], enoffsets => [8] }, 'the last probe');
    is($doc->{probes}[1999]{offidx}, 1999, 'the last probe: offidx');
};

subtest 'versions, options and variants the kernel accepts' => sub {
    accepted(build(%EXAMPLE, version => 3), 'version 3 (macOS)');
    my $v1 = accepted(build(%EXAMPLE, version => 1), 'version 1');
    is_deeply($v1->{probes}[0]{enoffsets}, [], 'version 1: is-enabled offsets are not read');
    accepted($base, 'encoding LSB required', encoding => 1);
    accepted($base, 'the host encoding required', encoding => 'host')
        if pack('L', 1) eq pack('V', 1);
    accepted(build(%EXAMPLE, attr => 0x06060600), 'the original library attributes (class 6)');
    my $doc = accepted(build(provider => 'p', probes => [
        { func => 'f', name => 'multi', off => [16, 20, 24], enoff => [] },
        { func => 'f', name => 'enonly', off => [], enoff => [8, 9] } ]),
        'several offsets per probe, or only is-enabled ones');
    is_deeply($doc->{probes}[0]{offsets}, [16, 20, 24], 'three probe offsets');
    is_deeply($doc->{probes}[1]{enoffsets}, [8, 9], 'two is-enabled offsets');
    $doc = accepted(build(provider => 'p', probes => [
        { func => 'f', name => 'x', types => ['int', 'long'], xtypes => ['long'], map => [1] } ]),
        'translated types differ from native ones');
    is_deeply([ @{ $doc->{probes}[0] }{qw(native translated mapping)} ],
        [ ['int', 'long'], ['long'], [1] ], 'native, translated, mapping');
    my $noen = set_probe(set_provider($base, prenoffs => 0), 0, nenoffs => 0);
    $doc = accepted($noen, 'no PRENOFFS link and no is-enabled offsets');
    is_deeply($doc->{probes}[0]{enoffsets}, [], 'no is-enabled offsets read');
    accepted($base . 'trailing', 'bytes after the load size are not read');
    accepted(build(%EXAMPLE, provider => 'p' x 63), 'provider name of 63 bytes');
    accepted(build(provider => 'p', probes => [ { func => 'f' x 127, name => 'n' x 63,
        types => [ 't' x 127 ] } ]), 'function 127, probe name 63, type 127 bytes');
};

subtest 'two PROVIDER sections' => sub {
    # The base document with a second provider record (named by string
    # index 4, "main", and sharing the first one's sections) and a new
    # section header table of 7 entries, both appended. The old table is
    # left behind as unreferenced bytes, so only the kernel's rules apply.
    my $second = substr($base, 0x14c, 44);
    substr($second, 16, 4) = pack 'V', 4;
    my $table = substr($base, 0x40, 6 * 32)
        . pack('VVVV Q<Q<', 15, 4, 1, 0, 0x178, 44);
    my $bytes = $base . $second . $table;
    $bytes = set_header($bytes, secnum => 7);
    $bytes = set_header($bytes, secoff => 0x178 + 44 + 4);    # 8-aligned
    substr($bytes, 0x178 + 44, 0) = "\0" x 4;
    $bytes = set_header(set_header($bytes, loadsz => length $bytes), filesz => length $bytes);
    my $doc = accepted($bytes, 'two providers', strict => 0);
    is_deeply([ map { $_->{name} } @{ $doc->{providers} } ], ['p1', 'main'], 'both providers read');
    is($doc->{provider}{name}, 'p1', 'provider is the first');
    is_deeply([ map { $_->{section} } @{ $doc->{providers} } ], [5, 6], 'their sections');
    refused(patch($bytes, 0x178 + 16, 'V', 999), 'provider 1: name index 999 outside string table',
        'the second provider is checked too', strict => 0);
};

subtest 'parse_file' => sub {
    my ($fh, $path) = tempfile(UNLINK => 1);
    binmode $fh;
    print {$fh} $base;
    close $fh;
    my ($doc, $err) = parse_file($path);
    ok($doc, 'parsed from a file') or diag($err);
    is($doc->{provider}{name}, 'p1', 'provider name from a file');
    my (undef, $missing) = parse_file("$path.missing");
    like($missing, qr/^cannot open \Q$path\E\.missing: /, 'a missing file is an error');
};

subtest 'dump of the one-probe example' => sub {
    is(dump($base_doc), <<'TEXT', 'dump text');
DOF model=LP64 encoding=LSB version=2 difvers=2 difireg=8 diftreg=8 flags=0x0
hdrsize=64 secsize=32 secnum=6 secoff=0x40 loadsz=376 filesz=376
section 0: STRTAB align=1 flags=0x1 entsize=0 offset=0x100 size=16
section 1: PROBES align=8 flags=0x1 entsize=48 offset=0x110 size=48
section 2: PRARGS align=1 flags=0x1 entsize=1 offset=0x140 size=1
section 3: PROFFS align=4 flags=0x1 entsize=4 offset=0x144 size=4
section 4: PRENOFFS align=4 flags=0x1 entsize=4 offset=0x148 size=4
section 5: PROVIDER align=4 flags=0x1 entsize=0 offset=0x14c size=44
provider p1: provider=0x06060500 module=0x06060500 function=0x06060500 name=0x06060500 args=0x06060500
probe 0: main:noargs addr=0x1000 off=[39] enoff=[13] args=() map=()
TEXT
    my ($doc) = parse(build(provider => 'p', probes => [
        { addr => 0x2000, func => 'f', name => 'two', types => ['int', 'char *'] } ]));
    like(dump($doc), qr/^probe 0: f:two addr=0x2000 off=\[16\] enoff=\[8\] args=\(int, char \*\) map=\(0,1\)$/m,
        'a probe with arguments');
};

# --- dtrace_dof_copyin ------------------------------------------------------------

refused(substr($base, 0, 40), 'document is 40 bytes, shorter than the 64-byte header',
    'a document shorter than the header');
refused(set_header($base, loadsz => 63), 'load size 63 smaller than the 64-byte header',
    'loadsz < 64');
refused($base, 'load size 376 not below maximum 376', 'loadsz equal to the maximum', maxsize => 376);
refused(set_header($base, loadsz => 256 * 1024 * 1024),
    'load size 268435456 not below maximum 268435456', 'loadsz > max (default 256 MiB)');
refused(set_header($base, loadsz => 1000), 'load size 1000 exceeds the 376 bytes given',
    'loadsz beyond the bytes given');

# --- dtrace_dof_slurp: header -------------------------------------------------------

refused(patch($base, 0, 'a4', "\x7fDOG"), 'bad magic', 'bad magic');
refused(set_header($base, model => 3), 'bad data model 3 (expected 1 ILP32 or 2 LP64)', 'model 3');
refused(set_header($base, encoding => 3), 'bad encoding 3 (expected 1 LSB or 2 MSB)', 'encoding 3');
refused($base, 'encoding 1 does not match required 2', 'encoding other than the required one',
    encoding => 2);
refused(set_header($base, version => 4), 'bad version 4 (accepted: 1, 2, 3)', 'version 4');
refused(build(%EXAMPLE, version => 3), 'bad version 3 (accepted: 1, 2)',
    'version 3 where only 1 and 2 are accepted (illumos)', versions => [1, 2]);
refused(set_header($base, difvers => 1), 'bad DIF version 1 (expected 2)', 'DIF version 1');
refused(set_header($base, difireg => 9), 'too many DIF integer registers: 9 (limit 8)',
    '9 integer registers');
refused(set_header($base, diftreg => 9), 'too many DIF tuple registers: 9 (limit 8)',
    '9 tuple registers');
refused(patch($base, 12, 'C', 1), 'ident byte 12 is 0x01 (must be 0)', 'ident pad byte non-zero');
refused(set_header($base, flags => 1), 'flags 0x1 set (must be 0)', 'flags 1');
refused(set_header($base, secsize => 0), 'section header size is 0', 'secsize 0');
refused(set_header($base, secnum => 100),
    'section headers (offset 0x40, 100 x 32 bytes) outside load size 376',
    'section header table beyond the load size');
refused(set_header($base, secoff => 0x44), 'section header offset 0x44 not aligned to 8',
    'section header table misaligned');
refused(set_header($base, secsize => 36), 'section header size 36 not a multiple of 8',
    'secsize not a multiple of 8');
refused(set_header($base, secsize => 24), 'section header size 24 smaller than a section header (32)',
    'secsize smaller than a section header');

# --- dtrace_dof_slurp: sections ---------------------------------------------------

refused(set_section($base, 3, flags => 0), 'section 3: loadable type PROFFS (18) without LOAD flag',
    'loadable section without LOAD flag');
refused(set_section($base, 3, align => 3), 'section 3: alignment 3 not a power of two',
    'alignment not a power of two');
refused(set_section($base, 3, offset => 0x145), 'section 3: offset 0x145 not aligned to 4',
    'section misaligned');
refused(set_section(build(%EXAMPLE, model => 1, encoding => 2), 3, offset => 0x145),
    'section 3: offset 0x145 not aligned to 4', 'section misaligned (ILP32 MSB document)');
refused(set_section($base, 3, align => 0), 'section 3: offset 0x144 not aligned to 0',
    'alignment 0 (a power of two to the kernel, then no offset but 0 is aligned)');
refused(set_section($base, 5, size => 48),
    'section 5: offset 0x14c + size 0x30 outside load size 0x178', 'section outside load size');
refused(set_section($base, 5, size => 0xffffffffffffff00),
    'section 5: offset 0x14c + size 0xffffffffffffff00 outside load size 0x178',
    'offset + size wraps 64 bits');
refused(set_section($base, 5, offset => 0xfffffffffffffffc),
    'section 5: offset 0xfffffffffffffffc + size 0x2c outside load size 0x178',
    'offset beyond the load size');
refused(patch($base, 0x10f, 'a', 'x'), 'section 0: string table does not end in NUL',
    'string table not NUL-terminated');
refused(set_section($base, 0, size => 0), 'section 0: string table is empty', 'string table empty');
refused(set_section($base, 2, type => 12), 'section 2: unsupported section type URELHDR (12)',
    'relocation section (not replayed)');

# --- dtrace_helper_provider_validate: the provider ------------------------------------

refused(set_section(set_section($base, 5, align => 1), 5, offset => 0x14a),
    'provider: section offset 0x14a not aligned to 4', 'provider section not 4-aligned');
refused(set_section($base, 5, size => 40), 'provider: section size 40 too small (need 44)',
    'provider section of 40 bytes in version 2');
accepted(set_section(set_header(patch($base, 0x14c + 40, 'V', 0), version => 1), 5, size => 40),
    'provider section of 40 bytes in version 1');
refused(set_provider($base, strtab => 9), 'provider: STRTAB link 9 is not a section (section count 6)',
    'link index >= secnum');
refused(set_section(set_section($base, 2, type => 1), 2, flags => 0),
    'provider: PRARGS link 2 is not a LOAD section', 'link to a non-LOAD section');
refused(set_provider($base, proffs => 4),
    'provider: PROFFS link 4 is a PRENOFFS (26) section, not PROFFS (18)', 'link to the wrong type');
refused(set_provider($base, prenoffs => 6),
    'provider: PRENOFFS link 6 is not a section (section count 6)', 'PRENOFFS link >= secnum');
refused(set_provider($base, name => 999), 'provider: name index 999 outside string table',
    'provider name index out of range');
refused(build(%EXAMPLE, provider => 'p' x 64), 'provider: name is 64 bytes (limit 63)',
    'provider name 64 bytes');
refused(set_section($base, 1, entsize => 0), 'provider: PROBES entry size is 0', 'probes entsize 0');
refused(set_section($base, 1, entsize => 96), 'provider: PROBES entry size 96 exceeds section size 48',
    'probes entsize larger than the section');
refused(set_section($base, 1, entsize => 44), 'provider: PROBES entry size 44 not a multiple of pointer size 8',
    'probes entsize not a multiple of 8 (LP64)');
refused(set_section(build(%EXAMPLE, model => 1), 1, entsize => 44),
    'provider: PROBES entry size 44 smaller than a probe record (48)',
    'probes entsize 44 passes the ILP32 pointer rule, then is too small to read');
refused(set_section($base, 3, entsize => 8), 'provider: PROFFS entry size 8 (must be 4)',
    'proffs entsize 8');
refused(set_section(set_section($base, 3, align => 1), 3, offset => 0x145),
    'provider: PROFFS section offset 0x145 not aligned to 4', 'proffs section not 4-aligned');
refused(set_section($base, 2, entsize => 2), 'provider: PRARGS entry size 2 (must be 1)',
    'prargs entsize 2');
refused(set_section($base, 4, entsize => 8), 'provider: PRENOFFS entry size 8 (must be 4)',
    'prenoffs entsize 8');

# --- dtrace_helper_provider_validate: each probe -------------------------------------

refused(set_probe($base, 0, func => 999), 'probe 0: function name index 999 outside string table',
    'function name index out of range');
refused(build(provider => 'p', probes => [ { func => 'f' x 128, name => 'n' } ]),
    'probe 0: function name is 128 bytes (limit 127)', 'function name 128 bytes');
refused(set_probe($base, 0, name => 16), 'probe 0: probe name index 16 outside string table',
    'probe name index out of range');
refused(build(provider => 'p', probes => [ { func => 'f', name => 'n' x 64 } ]),
    'probe 0: probe name is 64 bytes (limit 63)', 'probe name 64 bytes');
refused(set_probe($base, 0, offidx => 1),
    'probe 0: offset range (index 1, count 1) outside PROFFS (size 4)', 'offidx out of range');
refused(set_probe($base, 0, offidx => 0xffffffff),
    'probe 0: offset index 0xffffffff + count 1 wraps 32 bits', '32-bit wrap of offidx + noffs');
refused(set_probe($base, 0, offidx => 0x40000000),
    'probe 0: offset range (index 1073741824, count 1) outside PROFFS (size 4)',
    'offset range whose 32-bit size wraps (the kernel would let it through)');
refused(set_probe($base, 0, enoffidx => 1),
    'probe 0: is-enabled offset range (index 1, count 1) outside PRENOFFS (size 4)',
    'enoffidx out of range');
refused(set_probe($base, 0, enoffidx => 0xffffffff),
    'probe 0: is-enabled offset index 0xffffffff + count 1 wraps 32 bits',
    '32-bit wrap of enoffidx + nenoffs');
refused(set_provider($base, prenoffs => 0),
    'probe 0: is-enabled offsets (index 0, count 1) without a PRENOFFS section',
    'is-enabled offsets without PRENOFFS section');
refused(set_probe(set_probe($base, 0, noffs => 0), 0, nenoffs => 0),
    'probe 0: no probe or is-enabled offsets', 'no offsets at all');
refused(set_probe(build(%EXAMPLE, version => 1), 0, noffs => 0), 'probe 0: no probe offsets',
    'version 1: no probe offsets');
refused(set_probe($base, 0, argidx => 5),
    'probe 0: argument mapping range (index 5, count 0) outside PRARGS (size 1)',
    'argidx out of range (even with no arguments)');

my %TWO_ARGS = (provider => 'p', probes => [
    { func => 'f', name => 'two', types => ['int', 'char *'] } ]);
my $two = build(%TWO_ARGS);
my ($two_doc) = parse($two);
my $two_probe = probe_at($two_doc, 0);
my $two_prargs = $two_doc->{sections}[2]{offset};
my $two_name_idx = $two_doc->{probes}[0]{name_idx};

refused(patch_field($two, $two_probe, probe => xargc => 3),
    'probe 0: argument mapping range (index 0, count 3) outside PRARGS (size 2)',
    'argidx + xargc outside PRARGS');
refused(patch_field($two, $two_probe, probe => nargv => 999),
    'probe 0: native type 0 index 999 outside string table', 'type index out of range');
refused(patch_field($two, $two_probe, probe => nargv => $two_name_idx),
    "probe 0: native type 1 index @{[ $two_doc->{sections}[0]{size} ]} outside string table",
    'walking nargc types runs off the string table');
refused(patch_field($two, $two_probe, probe => xargv => 999),
    'probe 0: translated type 0 index 999 outside string table', 'translated type index out of range');
refused(build(provider => 'p', probes => [ { func => 'f', name => 'n', types => [ 't' x 128 ] } ]),
    'probe 0: native type 0 is 128 bytes (limit 127)', 'type string 128 bytes');
refused(build(provider => 'p', probes => [
    { func => 'f', name => 'n', types => ['int'], xtypes => [ 'x' x 128 ] } ]),
    'probe 0: translated type 0 is 128 bytes (limit 127)', 'translated type string 128 bytes');
refused(patch($two, $two_prargs + 1, 'C', 3), 'probe 0: mapping byte 1 is 3, greater than nargc 2',
    'mapping byte > nargc');
{
    my $doc = accepted(patch($two, $two_prargs + 1, 'C', 2), 'mapping byte == nargc (the kernel lets it through)');
    is_deeply($doc->{probes}[0]{mapping}, [0, 2], 'mapping byte == nargc: read as is');
}

# --- what the library promises beyond the kernel ------------------------------------

refused(set_header($base, hdrsize => 72), 'header size 72 (expected 64)', 'hdrsize not 64');
accepted(set_header($base, hdrsize => 72), 'hdrsize not 64, kernel rules only', strict => 0);
refused(set_header($base, pad => 1), 'header pad 0x1 (must be 0)', 'header pad non-zero');
refused(set_header($base, filesz => 400), 'loadsz 376 != filesz 400', 'loadsz != filesz');
refused(set_section($base, 3, offset => 0x140), 'sections 2 and 3 overlap', 'overlapping sections');
accepted(set_section($base, 3, offset => 0x140), 'overlapping sections, kernel rules only', strict => 0);
refused(set_section($base, 0, offset => 0x40), 'section 0 overlaps the section headers',
    'section over the section headers');
refused(set_section($base, 0, offset => 0), 'section 0 overlaps the header',
    'section over the header');
refused(set_header(set_header($base . "\x01", loadsz => 377), filesz => 377),
    'padding byte 0x178 after the last section is 0x01 (must be 0)',
    'bytes after the last section non-zero');
refused(patch($base, 0x141, 'C', 0xaa), 'padding byte 0x141 before section 3 is 0xaa (must be 0)',
    'padding between sections non-zero');
refused(set_probe($base, 0, pad1 => 1), 'probe 0: pad1 0x1 (must be 0)', 'probe pad1 non-zero');
refused(set_probe($base, 0, pad2 => 1), 'probe 0: pad2 0x1 (must be 0)', 'probe pad2 non-zero');
refused(set_section($base, 5, type => 0), 'no provider section', 'no provider section');
refused(build(%EXAMPLE, provider => ''), 'provider: name index 1 is an empty string',
    'empty provider name');

# --- the writer's patch helpers ------------------------------------------------------

is(patch("abcdef", 2, 'a2', 'XY'), 'abXYef', 'patch writes over the bytes at the offset');
ok(!eval { patch("abc", 2, 'V', 1); 1 }, 'patch refuses to write past the end');
is(substr(patch_field(build(%EXAMPLE, encoding => 2), 0, header => flags => 1), 16, 4),
    "\0\0\0\x01", 'patch_field writes in the document byte order');

done_testing();
