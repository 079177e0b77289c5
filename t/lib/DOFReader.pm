package DOFReader;

# DOFReader: read, check, print and build DOF (DTrace Object Format)
# documents, for the test suite. The library hands one DOF document per
# provider to the kernel's helper device, which checks it before creating
# any probe. parse() replays those checks on a byte string, so a test can
# say "the kernel would accept this", or name the rule it would refuse, on
# any host, with or without DTrace. build() and patch() make documents,
# valid or broken on purpose.
#
# The rules, in the order the kernel applies them (illumos dtrace.c; FreeBSD,
# xnu and Oracle's parser follow the same text), with its limits:
#   dtrace_dof_copyin
#     1. load size below the maximum (E2BIG) and at least the 64-byte header
#   dtrace_dof_slurp
#     2. magic "\177DOF"; model 1 or 2; encoding 1 or 2 (or the one
#        required); version accepted; DIF version 2; at most 8 integer and
#        8 tuple registers; ident bytes 10..15 zero; flags 0
#     3. section header size non-zero; the header table inside the load
#        size; table offset and header size multiples of 8
#     4. per section: a loadable type carries DOF_SECF_LOAD; then, for LOAD
#        sections only: alignment a power of two, offset aligned, offset and
#        size inside the load size, a string table ends in NUL
#   dtrace_dof_relocate
#     5. not replayed: a loadable section of a type a provider document
#        does not use (relocations, enablings, ...) is refused here
#   dtrace_helper_provider_validate, per PROVIDER section
#     6. section offset 4-aligned; size at least 44 (40 in version 1)
#     7. links to STRTAB, PROBES, PRARGS, PROFFS, then PRENOFFS (unless 0 or
#        version 1), each through dtrace_dof_sect: index < secnum, LOAD,
#        right type
#     8. provider name index inside the string table, name < 64 bytes
#     9. PROBES entry size non-zero, <= section size, a multiple of the
#        pointer size; PROFFS entry size 4 and offset 4-aligned; PRARGS
#        entry size 1
#    10. per probe: function name index in range and < 128 bytes; probe
#        name index in range and < 64 bytes; offset index + count (32-bit,
#        must not wrap) inside PROFFS; is-enabled index + count inside
#        PRENOFFS, or none without PRENOFFS; at least one offset of either
#        kind (version 1: one probe offset); argument index + xargc inside
#        PRARGS; nargc native type strings from nargv, each index in range
#        and < 128 bytes; per translated argument k: mapping byte <= nargc
#        (the kernel lets == nargc through), type index in range, < 128
#        bytes
#
# Three rules exist because this reader must read what it checks; each sits
# where the data is first read: section header size >= 32 (after 3), PROBES
# entry size >= 48 and PRENOFFS entry size 4 (in 9).
#
# After all of those, what the library promises beyond the kernel (skipped
# with strict => 0): a PROVIDER section exists (always checked); header
# size 64; section header size 32; header pad zero; loadsz == filesz; LOAD
# sections do not overlap each other or the headers; bytes between them
# zero; provider name non-empty; PROBES size a whole number of entries;
# probe pad fields zero.
#
# Errors are one line naming the rule and the values, e.g.
# "section 3: offset 0x14d not aligned to 4". The layout: reference/
# libusdt-spec.md section 3; the rules: its section 5.

use strict;
use warnings;
use Config;
use Exporter 'import';

our @EXPORT_OK = qw(parse parse_file dump build patch patch_field %FIELDS);

die "DOFReader needs a perl with 64-bit integers\n" if $Config{ivsize} < 8;

use constant {
    HEADER_BYTES     => 64,
    SECHDR_BYTES     => 32,
    PROBE_BYTES      => 48,
    PROVIDER_BYTES   => 44,    # 40 in DOF version 1 (no dofpv_prenoffs)
    PROVIDER_V1_BYTES => 40,
    DEFAULT_MAXSIZE  => 256 * 1024 * 1024,
    SECF_LOAD        => 1,
    PROVNAMELEN      => 64,    # DTRACE_PROVNAMELEN (includes the NUL)
    FUNCNAMELEN      => 128,   # DTRACE_FUNCNAMELEN
    NAMELEN          => 64,    # DTRACE_NAMELEN
    ARGTYPELEN       => 128,   # DTRACE_ARGTYPELEN
    DIF_VERSION      => 2,
    DIF_NREGS        => 8,     # both DIF_DIR_NREGS and DIF_DTR_NREGS
};

use constant {
    SECT_STRTAB   => 8,
    SECT_PROVIDER => 15,
    SECT_PROBES   => 16,
    SECT_PRARGS   => 17,
    SECT_PROFFS   => 18,
    SECT_PRENOFFS => 26,
};

my @SECTION_NAMES = qw(
    NONE COMMENTS SOURCE ECBDESC PROBEDESC ACTDESC DIFOHDR DIF STRTAB VARTAB
    RELTAB TYPTAB URELHDR KRELHDR OPTDESC PROVIDER PROBES PRARGS PROFFS INTTAB
    UTSNAME XLTAB XLMEMBERS XLIMPORT XLEXPORT PREXPORT PRENOFFS
);

# DOF_SEC_ISLOADABLE: every defined type except NONE, COMMENTS, SOURCE and
# UTSNAME.
my %LOADABLE = map { $_ => 1 } (3 .. 19, 21 .. 26);

# The loadable types a provider document is made of.
my %PROVIDER_TYPES = map { $_ => 1 }
    (SECT_STRTAB, SECT_PROVIDER, SECT_PROBES, SECT_PRARGS, SECT_PROFFS,
     SECT_PRENOFFS);

my $HOST_ENCODING = pack('L', 1) eq pack('V', 1) ? 1 : 2;

sub section_name {
    my ($type) = @_;
    return $SECTION_NAMES[$type] // "TYPE$type" if $type < @SECTION_NAMES;
    return "TYPE$type";
}

sub _type_label { my ($type) = @_; return section_name($type) . " ($type)" }

# Failures are thrown as a reference to the message, so that a bug in this
# module (a plain die) is never mistaken for a verdict on the document.
sub _fail { my $msg = shift; die \$msg }

# ---------------------------------------------------------------------------
# Reading integers in the document's byte order.

sub _templates {
    my ($encoding) = @_;
    return $encoding == 2
        ? { u16 => 'n', u32 => 'N', u64 => 'Q>' }
        : { u16 => 'v', u32 => 'V', u64 => 'Q<' };
}

sub _reader {
    my ($bytes, $encoding) = @_;
    my $t = _templates($encoding);
    my $get = sub {
        my ($tmpl, $off, $len) = @_;
        die "DOFReader internal: read of $len bytes at $off past the data\n"
            if $off + $len > length $$bytes;
        return unpack $tmpl, substr($$bytes, $off, $len);
    };
    return {
        u8  => sub { $get->('C', $_[0], 1) },
        u16 => sub { $get->($t->{u16}, $_[0], 2) },
        u32 => sub { $get->($t->{u32}, $_[0], 4) },
        u64 => sub { $get->($t->{u64}, $_[0], 8) },
    };
}

# ---------------------------------------------------------------------------
# parse

# parse($bytes, %options) -> ($doc, undef) or (undef, $message).
# Options: maxsize (bytes; the load size must be below it, default 256 MiB),
# encoding (1, 2 or 'host': require that encoding), versions (arrayref of
# accepted DOF versions, default [1, 2, 3]), ptrsize (the kernel's pointer
# size for the PROBES entry size rule; default 8 for LP64, 4 for ILP32),
# strict (default 1: also apply the library's own rules).
sub parse {
    my ($bytes, %opt) = @_;
    my $doc = eval { _parse(\$bytes, \%opt) };
    return ($doc, undef) if $doc;
    my $err = $@;
    return (undef, $$err) if ref $err eq 'SCALAR';
    die $err;
}

sub parse_file {
    my ($path, %opt) = @_;
    open my $fh, '<:raw', $path or return (undef, "cannot open $path: $!");
    local $/;
    my $bytes = <$fh>;
    close $fh;
    return parse($bytes // '', %opt);
}

sub _parse {
    my ($bytes, $opt) = @_;
    my $maxsize = $opt->{maxsize} // DEFAULT_MAXSIZE;
    my @versions = @{ $opt->{versions} // [1, 2, 3] };
    my $strict = $opt->{strict} // 1;

    # --- dtrace_dof_copyin ---------------------------------------------
    my $have = length $$bytes;
    _fail("document is $have bytes, shorter than the 64-byte header")
        if $have < HEADER_BYTES;

    my @ident = unpack 'C16', $$bytes;
    # The kernel reads the header in its own byte order; we read it in the
    # order the ident byte announces (the host's if it announces neither).
    my $encoding = $ident[5] == 1 || $ident[5] == 2 ? $ident[5] : $HOST_ENCODING;
    my $rd = _reader($bytes, $encoding);
    my $loadsz = $rd->{u64}->(40);

    _fail("load size $loadsz not below maximum $maxsize") if $loadsz >= $maxsize;
    _fail("load size $loadsz smaller than the 64-byte header")
        if $loadsz < HEADER_BYTES;
    _fail("load size $loadsz exceeds the $have bytes given") if $loadsz > $have;

    # --- dtrace_dof_slurp: the header ------------------------------------
    _fail('bad magic') if substr($$bytes, 0, 4) ne "\x7fDOF";
    my ($model, $enc, $version, $difvers, $difireg, $diftreg) = @ident[4 .. 9];
    _fail("bad data model $model (expected 1 ILP32 or 2 LP64)")
        unless $model == 1 || $model == 2;
    _fail("bad encoding $enc (expected 1 LSB or 2 MSB)")
        unless $enc == 1 || $enc == 2;
    if (defined $opt->{encoding}) {
        my $want = $opt->{encoding} eq 'host' ? $HOST_ENCODING : $opt->{encoding};
        _fail("encoding $enc does not match required $want") if $enc != $want;
    }
    _fail("bad version $version (accepted: " . join(', ', @versions) . ')')
        unless grep { $_ == $version } @versions;
    _fail("bad DIF version $difvers (expected 2)") if $difvers != DIF_VERSION;
    _fail("too many DIF integer registers: $difireg (limit 8)")
        if $difireg > DIF_NREGS;
    _fail("too many DIF tuple registers: $diftreg (limit 8)")
        if $diftreg > DIF_NREGS;
    for my $i (10 .. 15) {
        _fail(sprintf 'ident byte %d is 0x%02x (must be 0)', $i, $ident[$i])
            if $ident[$i] != 0;
    }

    my %hdr = (
        model => $model, encoding => $enc, version => $version,
        difvers => $difvers, difireg => $difireg, diftreg => $diftreg,
        flags   => $rd->{u32}->(16), hdrsize => $rd->{u32}->(20),
        secsize => $rd->{u32}->(24), secnum  => $rd->{u32}->(28),
        secoff  => $rd->{u64}->(32), loadsz  => $loadsz,
        filesz  => $rd->{u64}->(48), pad     => $rd->{u64}->(56),
    );
    _fail(sprintf 'flags 0x%x set (must be 0)', $hdr{flags}) if $hdr{flags};
    _fail('section header size is 0') if $hdr{secsize} == 0;

    my ($secoff, $secsize, $secnum) = @hdr{qw(secoff secsize secnum)};
    my $seclen = $secnum * $secsize;    # both u32: exact in 64 bits
    if ($secoff > $loadsz || $seclen > $loadsz || $secoff + $seclen > $loadsz) {
        _fail(sprintf 'section headers (offset 0x%x, %d x %d bytes) outside '
            . 'load size %d', $secoff, $secnum, $secsize, $loadsz);
    }
    _fail(sprintf 'section header offset 0x%x not aligned to 8', $secoff)
        if $secoff % 8;
    _fail("section header size $secsize not a multiple of 8") if $secsize % 8;
    _fail("section header size $secsize smaller than a section header (32)")
        if $secsize < SECHDR_BYTES;

    # --- dtrace_dof_slurp: the sections ------------------------------------
    my @sections;
    for my $i (0 .. $secnum - 1) {
        my $at = $secoff + $i * $secsize;
        push @sections, {
            index   => $i,
            type    => $rd->{u32}->($at),
            align   => $rd->{u32}->($at + 4),
            flags   => $rd->{u32}->($at + 8),
            entsize => $rd->{u32}->($at + 12),
            offset  => $rd->{u64}->($at + 16),
            size    => $rd->{u64}->($at + 24),
        };
    }
    for my $s (@sections) {
        my $where = "section $s->{index}";
        _fail("$where: loadable type " . _type_label($s->{type})
            . ' without LOAD flag')
            if $LOADABLE{ $s->{type} } && !($s->{flags} & SECF_LOAD);
        next unless $s->{flags} & SECF_LOAD;

        # ISP2(0) holds in the kernel; an alignment of 0 then fails the
        # offset test below (mask 0xffffffff) unless the offset is 0.
        my $align = $s->{align};
        _fail("$where: alignment $align not a power of two")
            if $align & (($align - 1) & 0xffffffff);
        my $mask = ($align - 1) & 0xffffffff;
        _fail(sprintf '%s: offset 0x%x not aligned to %d',
            $where, $s->{offset}, $align) if $s->{offset} & $mask;

        if ($s->{offset} > $loadsz || $s->{size} > $loadsz
            || $s->{offset} + $s->{size} > $loadsz) {
            _fail(sprintf '%s: offset 0x%x + size 0x%x outside load size 0x%x',
                $where, $s->{offset}, $s->{size}, $loadsz);
        }
        if ($s->{type} == SECT_STRTAB) {
            # The kernel would read the byte before an empty table.
            _fail("$where: string table is empty") if $s->{size} == 0;
            _fail("$where: string table does not end in NUL")
                if substr($$bytes, $s->{offset} + $s->{size} - 1, 1) ne "\0";
        }
    }

    # --- dtrace_dof_relocate (not replayed) --------------------------------
    for my $s (@sections) {
        next unless $s->{flags} & SECF_LOAD && $LOADABLE{ $s->{type} };
        _fail("section $s->{index}: unsupported section type "
            . _type_label($s->{type})) unless $PROVIDER_TYPES{ $s->{type} };
    }

    # --- dtrace_helper_provider_validate, per PROVIDER section -------------
    my @provsecs = grep { $_->{type} == SECT_PROVIDER } @sections;
    my $ctx = {
        bytes => $bytes, rd => $rd, hdr => \%hdr, sections => \@sections,
        ptrsize => $opt->{ptrsize} // ($model == 2 ? 8 : 4),
    };
    my @providers;
    for my $k (0 .. $#provsecs) {
        my $label = @provsecs > 1 ? "provider $k" : 'provider';
        push @providers, _provider($ctx, $provsecs[$k], $label);
    }

    # --- what the library promises beyond the kernel -----------------------
    _fail('no provider section') unless @providers;
    _strict($ctx, \@providers) if $strict;

    return {
        %hdr,
        sections  => \@sections,
        providers => \@providers,
        provider  => $providers[0],
        probes    => $providers[0]{probes},
    };
}

# dtrace_dof_sect: a provider's link to another section.
sub _linked {
    my ($ctx, $label, $want, $idx) = @_;
    my $what = "$label: " . section_name($want) . " link $idx";
    my $secnum = $ctx->{hdr}{secnum};
    _fail("$what is not a section (section count $secnum)") if $idx >= $secnum;
    my $s = $ctx->{sections}[$idx];
    _fail("$what is not a LOAD section") unless $s->{flags} & SECF_LOAD;
    _fail("$what is a " . _type_label($s->{type}) . ' section, not '
        . _type_label($want)) if $s->{type} != $want;
    return $s;
}

# The length of the NUL-terminated string at $idx of a string table known to
# end in NUL.
sub _strlen {
    my ($bytes, $strtab, $idx) = @_;
    my $start = $strtab->{offset} + $idx;
    return index($$bytes, "\0", $start) - $start;
}

sub _string {
    my ($bytes, $strtab, $idx) = @_;
    return substr $$bytes, $strtab->{offset} + $idx, _strlen($bytes, $strtab, $idx);
}

# Check a run of (index, count) entries of a section in the kernel's 32-bit
# arithmetic: index + count must not wrap, and the run must fit in the
# section. (The kernel's multiplication by the entry size is also 32-bit and
# could wrap; we compute it exactly, which only ever refuses more.)
sub _check_run {
    my ($where, $noun, $sec, $idx, $count) = @_;
    my $end = ($idx + $count) & 0xffffffff;
    _fail(sprintf '%s: %s index 0x%x + count %d wraps 32 bits',
        $where, $noun, $idx, $count) if $end < $idx;
    _fail(sprintf '%s: %s range (index %d, count %d) outside %s (size %d)',
        $where, $noun, $idx, $count, section_name($sec->{type}), $sec->{size})
        if $end * $sec->{entsize} > $sec->{size};
}

sub _provider {
    my ($ctx, $sec, $label) = @_;
    my ($bytes, $rd, $hdr) = @$ctx{qw(bytes rd hdr)};
    my $v1 = $hdr->{version} == 1;

    _fail(sprintf '%s: section offset 0x%x not aligned to 4', $label, $sec->{offset})
        if $sec->{offset} & 3;
    my $need = $v1 ? PROVIDER_V1_BYTES : PROVIDER_BYTES;
    _fail("$label: section size $sec->{size} too small (need $need)")
        if $sec->{size} < $need;

    my $at = $sec->{offset};
    my %pv = (
        section  => $sec->{index},
        name_idx => $rd->{u32}->($at + 16),
        links    => {
            strtab   => $rd->{u32}->($at),     probes => $rd->{u32}->($at + 4),
            prargs   => $rd->{u32}->($at + 8), proffs => $rd->{u32}->($at + 12),
            prenoffs => $v1 ? undef : $rd->{u32}->($at + 40),
        },
        attrs    => {
            provider => $rd->{u32}->($at + 20), module => $rd->{u32}->($at + 24),
            function => $rd->{u32}->($at + 28), name   => $rd->{u32}->($at + 32),
            args     => $rd->{u32}->($at + 36),
        },
    );
    my $links = $pv{links};

    my %sec = (
        strtab => _linked($ctx, $label, SECT_STRTAB, $links->{strtab}),
        probes => _linked($ctx, $label, SECT_PROBES, $links->{probes}),
        prargs => _linked($ctx, $label, SECT_PRARGS, $links->{prargs}),
        proffs => _linked($ctx, $label, SECT_PROFFS, $links->{proffs}),
    );
    $sec{prenoffs} = _linked($ctx, $label, SECT_PRENOFFS, $links->{prenoffs})
        if !$v1 && $links->{prenoffs} != 0;
    my ($str_sec, $prb_sec, $arg_sec, $off_sec, $enoff_sec)
        = @sec{qw(strtab probes prargs proffs prenoffs)};

    _fail("$label: name index $pv{name_idx} outside string table")
        if $pv{name_idx} >= $str_sec->{size};
    my $len = _strlen($bytes, $str_sec, $pv{name_idx});
    _fail("$label: name is $len bytes (limit 63)") if $len >= PROVNAMELEN;
    $pv{name} = _string($bytes, $str_sec, $pv{name_idx});

    my $entsize = $prb_sec->{entsize};
    _fail("$label: PROBES entry size is 0") if $entsize == 0;
    _fail("$label: PROBES entry size $entsize exceeds section size $prb_sec->{size}")
        if $entsize > $prb_sec->{size};
    _fail("$label: PROBES entry size $entsize not a multiple of pointer size "
        . $ctx->{ptrsize}) if $entsize % $ctx->{ptrsize};
    _fail("$label: PROBES entry size $entsize smaller than a probe record (48)")
        if $entsize < PROBE_BYTES;
    _fail("$label: PROFFS entry size $off_sec->{entsize} (must be 4)")
        if $off_sec->{entsize} != 4;
    _fail(sprintf '%s: PROFFS section offset 0x%x not aligned to 4',
        $label, $off_sec->{offset}) if $off_sec->{offset} & 3;
    _fail("$label: PRARGS entry size $arg_sec->{entsize} (must be 1)")
        if $arg_sec->{entsize} != 1;
    _fail("$label: PRENOFFS entry size $enoff_sec->{entsize} (must be 4)")
        if $enoff_sec && $enoff_sec->{entsize} != 4;

    my $nprobes = int($prb_sec->{size} / $entsize);
    my $prefix = $label eq 'provider' ? '' : "$label ";
    $pv{probes} = [ map {
        _probe($ctx, \%sec, $prb_sec->{offset} + $_ * $entsize, $_,
            "${prefix}probe $_")
    } 0 .. $nprobes - 1 ];
    return \%pv;
}

sub _probe {
    my ($ctx, $sec, $at, $j, $where) = @_;
    my ($bytes, $rd, $hdr) = @$ctx{qw(bytes rd hdr)};
    my ($str_sec, $arg_sec, $off_sec, $enoff_sec)
        = @$sec{qw(strtab prargs proffs prenoffs)};

    my %p = (
        index    => $j,
        addr     => $rd->{u64}->($at),
        func_idx => $rd->{u32}->($at + 8),  name_idx => $rd->{u32}->($at + 12),
        nargv    => $rd->{u32}->($at + 16), xargv    => $rd->{u32}->($at + 20),
        argidx   => $rd->{u32}->($at + 24), offidx   => $rd->{u32}->($at + 28),
        nargc    => $rd->{u8}->($at + 32),  xargc    => $rd->{u8}->($at + 33),
        noffs    => $rd->{u16}->($at + 34), enoffidx => $rd->{u32}->($at + 36),
        nenoffs  => $rd->{u16}->($at + 40), pad1     => $rd->{u16}->($at + 42),
        pad2     => $rd->{u32}->($at + 44),
    );

    _fail("$where: function name index $p{func_idx} outside string table")
        if $p{func_idx} >= $str_sec->{size};
    my $len = _strlen($bytes, $str_sec, $p{func_idx});
    _fail("$where: function name is $len bytes (limit 127)") if $len >= FUNCNAMELEN;
    _fail("$where: probe name index $p{name_idx} outside string table")
        if $p{name_idx} >= $str_sec->{size};
    $len = _strlen($bytes, $str_sec, $p{name_idx});
    _fail("$where: probe name is $len bytes (limit 63)") if $len >= NAMELEN;

    _check_run($where, 'offset', $off_sec, $p{offidx}, $p{noffs});
    if ($hdr->{version} != 1) {
        if (!$enoff_sec) {
            _fail("$where: is-enabled offsets (index $p{enoffidx}, count "
                . "$p{nenoffs}) without a PRENOFFS section")
                if $p{enoffidx} != 0 || $p{nenoffs} != 0;
        } else {
            _check_run($where, 'is-enabled offset', $enoff_sec,
                $p{enoffidx}, $p{nenoffs});
        }
        _fail("$where: no probe or is-enabled offsets")
            if $p{noffs} + $p{nenoffs} == 0;
    } else {
        _fail("$where: no probe offsets") if $p{noffs} == 0;
    }
    _check_run($where, 'argument mapping', $arg_sec, $p{argidx}, $p{xargc});

    my @native;
    my $typeidx = $p{nargv};
    for my $k (0 .. $p{nargc} - 1) {
        _fail("$where: native type $k index $typeidx outside string table")
            if $typeidx >= $str_sec->{size};
        my $n = _strlen($bytes, $str_sec, $typeidx);
        _fail("$where: native type $k is $n bytes (limit 127)")
            if $n + 1 > ARGTYPELEN;
        push @native, _string($bytes, $str_sec, $typeidx);
        $typeidx += $n + 1;
    }

    my (@translated, @mapping);
    $typeidx = $p{xargv};
    for my $k (0 .. $p{xargc} - 1) {
        my $map = $rd->{u8}->($arg_sec->{offset} + $p{argidx} + $k);
        _fail("$where: mapping byte $k is $map, greater than nargc $p{nargc}")
            if $map > $p{nargc};
        push @mapping, $map;
        _fail("$where: translated type $k index $typeidx outside string table")
            if $typeidx >= $str_sec->{size};
        my $n = _strlen($bytes, $str_sec, $typeidx);
        _fail("$where: translated type $k is $n bytes (limit 127)")
            if $n + 1 > ARGTYPELEN;
        push @translated, _string($bytes, $str_sec, $typeidx);
        $typeidx += $n + 1;
    }

    $p{func} = _string($bytes, $str_sec, $p{func_idx});
    $p{name} = _string($bytes, $str_sec, $p{name_idx});
    $p{native} = \@native;
    $p{translated} = \@translated;
    $p{mapping} = \@mapping;
    $p{offsets} = [ map { $rd->{u32}->($off_sec->{offset} + 4 * ($p{offidx} + $_)) }
        0 .. $p{noffs} - 1 ];
    $p{enoffsets} = $hdr->{version} == 1 || !$enoff_sec ? [] :
        [ map { $rd->{u32}->($enoff_sec->{offset} + 4 * ($p{enoffidx} + $_)) }
            0 .. $p{nenoffs} - 1 ];
    return \%p;
}

sub _strict {
    my ($ctx, $providers) = @_;
    my ($bytes, $hdr, $sections) = @$ctx{qw(bytes hdr sections)};

    _fail("header size $hdr->{hdrsize} (expected 64)")
        if $hdr->{hdrsize} != HEADER_BYTES;
    _fail("section header size $hdr->{secsize} (expected 32)")
        if $hdr->{secsize} != SECHDR_BYTES;
    _fail(sprintf 'header pad 0x%x (must be 0)', $hdr->{pad}) if $hdr->{pad};
    _fail("loadsz $hdr->{loadsz} != filesz $hdr->{filesz}")
        if $hdr->{loadsz} != $hdr->{filesz};

    # Every byte up to the load size belongs to exactly one of: the header,
    # the section header table, a LOAD section; or is zero padding.
    my $table_end = $hdr->{secoff} + $hdr->{secnum} * $hdr->{secsize};
    my @regions = sort { $a->{start} <=> $b->{start} || $a->{order} <=> $b->{order} } (
        { name => 'the header', start => 0, end => HEADER_BYTES, order => -2 },
        { name => 'the section headers', start => $hdr->{secoff}, end => $table_end,
          order => -1 },
        map { { name => "section $_->{index}", index => $_->{index},
                start => $_->{offset}, end => $_->{offset} + $_->{size},
                order => $_->{index} } }
            grep { $_->{flags} & SECF_LOAD } @$sections,
    );
    @regions = grep { $_->{end} > $_->{start} } @regions;
    my $prev;
    for my $r (@regions) {
        if ($prev && $r->{start} < $prev->{end}) {
            _fail("sections $prev->{index} and $r->{index} overlap")
                if defined $prev->{index} && defined $r->{index};
            my ($sec, $other) = defined $r->{index} ? ($r, $prev) : ($prev, $r);
            _fail("$sec->{name} overlaps $other->{name}");
        }
        _check_zero($bytes, $prev ? $prev->{end} : 0, $r->{start}, "before $r->{name}");
        $prev = $r;
    }
    _check_zero($bytes, $prev->{end}, $hdr->{loadsz}, 'after the last section');

    for my $k (0 .. $#$providers) {
        my $pv = $providers->[$k];
        my $label = @$providers > 1 ? "provider $k" : 'provider';
        my $prefix = @$providers > 1 ? "$label " : '';
        _fail("$label: name index $pv->{name_idx} is an empty string")
            if $pv->{name} eq '';
        my $prb_sec = $sections->[ $pv->{links}{probes} ];
        _fail("$label: PROBES size $prb_sec->{size} not a multiple of entry "
            . "size $prb_sec->{entsize}") if $prb_sec->{size} % $prb_sec->{entsize};
        for my $p (@{ $pv->{probes} }) {
            for my $pad (qw(pad1 pad2)) {
                _fail(sprintf '%sprobe %d: %s 0x%x (must be 0)',
                    $prefix, $p->{index}, $pad, $p->{$pad}) if $p->{$pad};
            }
        }
    }
}

sub _check_zero {
    my ($bytes, $from, $to, $where) = @_;
    for my $off ($from .. $to - 1) {
        my $b = ord substr($$bytes, $off, 1);
        _fail(sprintf 'padding byte 0x%x %s is 0x%02x (must be 0)', $off, $where, $b)
            if $b;
    }
}

# ---------------------------------------------------------------------------
# dump

# dump($doc) -> text, one fact a line: header, sections, then per provider
# its name and attributes and one line per probe.
sub dump {
    my ($doc) = @_;
    my @out;
    push @out, sprintf 'DOF model=%s encoding=%s version=%d difvers=%d '
        . 'difireg=%d diftreg=%d flags=0x%x',
        ($doc->{model} == 2 ? 'LP64' : 'ILP32'),
        ($doc->{encoding} == 2 ? 'MSB' : 'LSB'),
        @$doc{qw(version difvers difireg diftreg flags)};
    push @out, sprintf 'hdrsize=%d secsize=%d secnum=%d secoff=0x%x '
        . 'loadsz=%d filesz=%d', @$doc{qw(hdrsize secsize secnum secoff loadsz filesz)};
    for my $s (@{ $doc->{sections} }) {
        push @out, sprintf 'section %d: %s align=%d flags=0x%x entsize=%d '
            . 'offset=0x%x size=%d', $s->{index}, section_name($s->{type}),
            @$s{qw(align flags entsize offset size)};
    }
    for my $pv (@{ $doc->{providers} }) {
        my $a = $pv->{attrs};
        push @out, sprintf 'provider %s: provider=0x%08x module=0x%08x '
            . 'function=0x%08x name=0x%08x args=0x%08x', $pv->{name},
            @$a{qw(provider module function name args)};
        for my $p (@{ $pv->{probes} }) {
            my $line = sprintf 'probe %d: %s:%s addr=0x%x off=[%s] enoff=[%s] '
                . 'args=(%s) map=(%s)', $p->{index}, $p->{func}, $p->{name},
                $p->{addr}, join(',', @{ $p->{offsets} }),
                join(',', @{ $p->{enoffsets} }), join(', ', @{ $p->{native} }),
                join(',', @{ $p->{mapping} });
            my $same = join("\0", @{ $p->{native} }) eq join("\0", @{ $p->{translated} });
            $line .= sprintf ' xargs=(%s)', join(', ', @{ $p->{translated} })
                unless $same;
            push @out, $line;
        }
    }
    return join("\n", @out) . "\n";
}

# ---------------------------------------------------------------------------
# build and patch

# build(%spec) -> bytes of a document laid out as the library lays it out
# (spec section 3): header, six section headers (STRTAB, PROBES, PRARGS,
# PROFFS, PRENOFFS, PROVIDER), data from 0x100, each section's start rounded
# up to its alignment with zero bytes, loadsz = filesz = end of the provider.
#   provider => NAME, model => 2, encoding => 1, version => 2,
#   attr => 0x06060500 (all five attribute words) or attrs => {provider,
#   module, function, name, args},
#   probes => [ { func, name, addr => 0, types => [], off => 16 or [..],
#                 enoff => 8 or [..], xtypes => [..], map => [..] }, ... ]
# Nothing is validated: a spec with over-long names builds a document the
# reader refuses, which is what corruption tests want.
sub build {
    my (%spec) = @_;
    my $model    = $spec{model} // 2;
    my $encoding = $spec{encoding} // 1;
    my $version  = $spec{version} // 2;
    my $attr     = $spec{attr} // 0x06060500;
    my %attrs    = (provider => $attr, module => $attr, function => $attr,
                    name => $attr, args => $attr, %{ $spec{attrs} // {} });
    my $t = _templates($encoding);
    my ($u16, $u32, $u64) = @$t{qw(u16 u32 u64)};

    my $strtab = "\0";
    my $add = sub { my $i = length $strtab; $strtab .= "$_[0]\0"; return $i };
    my $provider_name = $add->($spec{provider} // die "build: provider missing\n");

    my ($probes, $prargs, $proffs, $prenoffs) = ('', '', '', '');
    my ($argidx, $offidx, $enoffidx) = (0, 0, 0);
    for my $p (@{ $spec{probes} // [] }) {
        my @types = @{ $p->{types} // [] };
        my @type_idx = map { $add->($_) } @types;
        my @xtypes = $p->{xtypes} ? @{ $p->{xtypes} } : @types;
        my @xtype_idx = $p->{xtypes} ? map { $add->($_) } @xtypes : @type_idx;
        my @map = $p->{map} ? @{ $p->{map} } : (0 .. $#xtypes);
        my $func = $add->($p->{func} // die "build: probe without func\n");
        my $name = $add->($p->{name} // die "build: probe without name\n");
        my @off   = ref $p->{off}   ? @{ $p->{off} }   : ($p->{off} // 16);
        my @enoff = ref $p->{enoff} ? @{ $p->{enoff} } : ($p->{enoff} // 8);
        die "build: more than 255 arguments\n" if @types > 255 || @xtypes > 255;

        $probes .= pack "$u64 $u32$u32$u32$u32$u32$u32 CC$u16 $u32 $u16$u16 $u32",
            $p->{addr} // 0, $func, $name, $type_idx[0] // 0, $xtype_idx[0] // 0,
            $argidx, $offidx, scalar @types, scalar @xtypes, scalar @off,
            $enoffidx, scalar @enoff, 0, 0;
        $prargs   .= pack 'C*', @map;
        $proffs   .= pack "$u32*", @off;
        $prenoffs .= pack "$u32*", @enoff;
        $argidx   += @map;
        $offidx   += @off;
        $enoffidx += @enoff;
    }
    $prargs = "\0" if $prargs eq '';    # never empty

    my $provider = pack "$u32*", 0, 1, 2, 3, $provider_name,
        @attrs{qw(provider module function name args)}, 4;

    # type, align, entsize, data; in the order of the section headers
    my @secs = (
        [SECT_STRTAB,   1, 0,  $strtab],
        [SECT_PROBES,   8, 48, $probes],
        [SECT_PRARGS,   1, 1,  $prargs],
        [SECT_PROFFS,   4, 4,  $proffs],
        [SECT_PRENOFFS, 4, 4,  $prenoffs],
        [SECT_PROVIDER, 4, 0,  $provider],
    );
    my $data_start = HEADER_BYTES + @secs * SECHDR_BYTES;    # 0x100
    my ($headers, $data, $pos) = ('', '', $data_start);
    for my $s (@secs) {
        my ($type, $align, $entsize, $bytes) = @$s;
        my $start = ($pos + $align - 1) & ~($align - 1);
        $data .= "\0" x ($start - $pos) . $bytes;
        $headers .= pack "$u32$u32$u32$u32 $u64$u64",
            $type, $align, SECF_LOAD, $entsize, $start, length $bytes;
        $pos = $start + length $bytes;
    }
    my $header = pack("a4 C6 x6 $u32$u32$u32$u32 $u64$u64$u64$u64",
        "\x7fDOF", $model, $encoding, $version, DIF_VERSION, DIF_NREGS, DIF_NREGS,
        0, HEADER_BYTES, SECHDR_BYTES, scalar @secs, HEADER_BYTES, $pos, $pos, 0);
    return $header . $headers . $data;
}

# Where each field sits in its record: [byte offset, width in bytes]. The
# records are the header (at 0), a section header (at secoff + i * secsize),
# a probe (at the PROBES offset + j * entsize) and a provider.
our %FIELDS = (
    header => {
        model => [4, 1], encoding => [5, 1], version => [6, 1],
        difvers => [7, 1], difireg => [8, 1], diftreg => [9, 1],
        flags => [16, 4], hdrsize => [20, 4], secsize => [24, 4],
        secnum => [28, 4], secoff => [32, 8], loadsz => [40, 8],
        filesz => [48, 8], pad => [56, 8],
    },
    section => {
        type => [0, 4], align => [4, 4], flags => [8, 4], entsize => [12, 4],
        offset => [16, 8], size => [24, 8],
    },
    probe => {
        addr => [0, 8], func => [8, 4], name => [12, 4], nargv => [16, 4],
        xargv => [20, 4], argidx => [24, 4], offidx => [28, 4], nargc => [32, 1],
        xargc => [33, 1], noffs => [34, 2], enoffidx => [36, 4],
        nenoffs => [40, 2], pad1 => [42, 2], pad2 => [44, 4],
    },
    provider => {
        strtab => [0, 4], probes => [4, 4], prargs => [8, 4], proffs => [12, 4],
        name => [16, 4], provattr => [20, 4], modattr => [24, 4],
        funcattr => [28, 4], nameattr => [32, 4], argsattr => [36, 4],
        prenoffs => [40, 4],
    },
);

# patch_field($bytes, $record_offset, $record, $field, $value) -> a copy of
# $bytes with one field of one record set, in the byte order the header's
# ident byte 5 announces (LSB unless it says 2).
sub patch_field {
    my ($bytes, $base, $record, $field, $value) = @_;
    my $f = $FIELDS{$record}{$field} // die "patch_field: no field $record.$field\n";
    my ($off, $width) = @$f;
    my $t = _templates(ord(substr $bytes, 5, 1) == 2 ? 2 : 1);
    my $tmpl = { 1 => 'C', 2 => $t->{u16}, 4 => $t->{u32}, 8 => $t->{u64} }->{$width};
    return patch($bytes, $base + $off, $tmpl, $value);
}

# patch($bytes, $offset, $template, @values) -> a copy of $bytes with
# pack($template, @values) written over the bytes at $offset.
sub patch {
    my ($bytes, $offset, $template, @values) = @_;
    my $new = pack $template, @values;
    die "patch: offset $offset + " . length($new) . " past the end\n"
        if $offset + length $new > length $bytes;
    substr($bytes, $offset, length $new) = $new;
    return $bytes;
}

1;
