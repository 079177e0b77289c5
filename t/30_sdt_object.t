# The SDT object as readelf sees it: one well-formed note per probe with
# provider, name, location, base, semaphore and argument specs; a build-id;
# symbols; no warnings from `readelf -a`; no executable stack; no segment
# both writable and executable.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use USDTTest qw(driver run_capture);

my $exe = $ENV{USDT_TEST_EXE};
my $d = driver($exe ? (_exe => $exe) : ());
my ($arch) = $d->cmd('arch') =~ /^arch (\S+)/;
my ($w, @where) = $arch eq 'x86_64'
    # x86_64: the SDT part is called, so the return address is at 0(%rsp)
    ? (8, qw(%rdi %rsi %rdx %rcx %r8 %r9), map { 8 * $_ . '(%rsp)' } 1 .. 6)
    : (4, map { 4 * $_ . '(%esp)' } 0 .. 11);
my $site = $arch eq 'x86_64' ? 37 : 33;

my @counts = (0, 1, 6, 7, 12, 32);
$d->ok_all('provider p sdt-prov mod');
for my $n (@counts) {
    my @types = map { $_ % 2 ? 'str' : 'int' } 0 .. $n - 1;
    $d->ok_all("probe a$n fn args-$n @types", "add p a$n");
}
$d->ok_all('enable p');
my ($path) = $d->cmd('path p') =~ /^path (\S+)$/;
ok $path, "the object is at $path";

my ($st, $notes) = run_capture('readelf', '-nW', $path);
is $st, 0, 'readelf -n';
my @notes;
while ($notes =~ /Provider: (\S*)\s+Name: (\S*)\s+Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)\s+Arguments: ?([^\n]*)/g) {
    push @notes, { provider => $1, name => $2, pc => hex $3, base => hex $4, sem => hex $5, args => $6 };
}
is scalar @notes, scalar @counts, 'one note per probe';

my ($sst, $sections) = run_capture('readelf', '-SW', $path);
my %sec;
while ($sections =~ /\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)/g) {
    $sec{$1} = { addr => hex $2, off => hex $3, size => hex $4 };
}
for my $i (0 .. $#counts) {
    my $n = $counts[$i];
    my $note = $notes[$i];
    is $note->{provider}, 'sdt__prov', "$n args: '-' in the provider is published as '__'";
    is $note->{name}, "args__$n", "$n args: and in the probe name";
    is $note->{pc}, $sec{'.text'}{addr} + 48 * $i + $site, "$n args: location is the stub's 5-byte nop";
    is $note->{base}, $sec{'.stapsdt.base'}{addr}, "$n args: base is .stapsdt.base";
    is $note->{sem}, $sec{'.probes'}{addr} + 2 * $i, "$n args: a 2-byte semaphore in .probes";
    my $shown = $n > 12 ? 12 : $n;
    my $want = join ' ', map { ($_ % 2 ? '' : '-') . "$w\@$where[$_]" } 0 .. $shown - 1;
    is $note->{args}, $want, "$n args: argument specs" . ($n > 12 ? ' (the first 12)' : '');
}

my ($ast, $all) = run_capture('readelf', '-aW', $path);
is $ast, 0, 'readelf -a';
unlike $all, qr/warning|error/i, 'readelf -a prints no warning';
like $all, qr/Build ID: [0-9a-f]{40}/, 'a build-id note';
like $all, qr/GNU_STACK\s+0x0+ 0x0+ 0x0+ 0x0+ 0x0+ RW /, 'the stack is not executable';
my @loads = $all =~ /^\s+LOAD\s+(?:0x[0-9a-f]+\s+){5}(.{3}) 0x1000$/mg;
is_deeply [sort @loads], [sort 'R  ', 'R E', 'RW '], 'segments R, R E, RW: none writable and executable';
like $all, qr/FUNC\s+GLOBAL DEFAULT\s+\d+ sdt__prov_fn_args__0\b/, 'each stub has a symbol named provider_function_name (published forms)';
like $all, qr/OBJECT\s+GLOBAL DEFAULT\s+\d+ sdt__prov_args__0_semaphore\b/, 'and each semaphore one';
like $all, qr/\(SONAME\)\s+Library soname: \[libusdt-sdt__prov\]/, 'a soname';

# The mappings of a process that are writable and executable at once: the
# w and the x of the permissions field ("rwxp").
sub wx_mappings {
    my ($pid) = @_;
    open my $maps, '<', "/proc/$pid/maps" or die "/proc/$pid/maps: $!";
    return grep { my $perms = (split ' ')[1]; substr($perms, 1, 1) eq 'w' && substr($perms, 2, 1) eq 'x' } <$maps>;
}

SKIP: {
    skip "under qemu user-mode emulation: qemu's own code cache is writable and executable", 3
        if $ENV{USDT_TEST_EMULATED};
    my ($pid) = $d->cmd('pid') =~ /(\d+)/;
    is_deeply [ wx_mappings($pid) ], [], 'no mapping of the process is writable and executable';
    # and that check sees one when there is one
    my $wx = driver($exe ? (_exe => $exe) : ());
    my ($wxpid) = $wx->cmd('pid') =~ /(\d+)/;
    my ($addr) = $wx->cmd('wxmap') =~ /^wxmap 0x([0-9a-f]+)$/;
    is_deeply [ map { /^([0-9a-f]+)-/ } wx_mappings($wxpid) ], [ $addr ],
        'the check finds a page the driver mapped readable, writable and executable';
    is $wx->close, 0;
}

$d->ok_all('free p');
is $d->close, 0;
done_testing;
