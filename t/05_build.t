# The header compiles everywhere bindings include it, and the library
# builds without a warning on gcc and clang, the way bindings build it.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my $top = top_dir();
my $tmp = tempdir(CLEANUP => 1);
open my $fh, '>', "$tmp/inc.c" or die;
print $fh "#include \"usdt.h\"\nint main(void) { usdt_probe_t *p = 0; return usdt_is_enabled(p) + USDT_ARG_MAX - 32 + (int)USDT_ERROR_REMOVE_PROBE - 7; }\n";
close $fh;

for my $cc ('gcc', 'clang') {
    for my $std ('c89', 'c99', 'c11') {
        my ($st, $out) = run_capture($cc, "-std=$std", qw(-Wall -Wextra -pedantic -Werror -fsyntax-only),
                                     "-I$top", "$tmp/inc.c");
        is $st, 0, "usdt.h with $cc -std=$std -pedantic: clean" or diag $out;
    }
    my $cxx = $cc eq 'gcc' ? 'g++' : 'clang++';
    my ($st, $out) = run_capture($cxx, qw(-x c++ -std=c++11 -Wall -Wextra -pedantic -Werror -fsyntax-only),
                                 "-I$top", "$tmp/inc.c");
    is $st, 0, "usdt.h as C++ with $cxx: clean" or diag $out;
}

# A binding's build: a copy of the tree, `make clean all` with CC and
# CFLAGS on the command line. No warnings; no libusdt.so beside libusdt.a.
for my $cc ('gcc', 'clang') {
    my $dir = "$tmp/$cc";
    mkdir $dir;
    system('cp', glob("$top/*.[chs]"), "$top/Makefile", $dir) == 0 or die;
    my ($st, $out) = run_capture('make', '-C', $dir, 'clean', 'all', "CC=$cc", 'CFLAGS=-O1');
    is $st, 0, "make clean all CC=$cc CFLAGS=-O1" or diag $out;
    unlike $out, qr/warning/i, "$cc: no warnings" or diag $out;
    ok -f "$dir/libusdt.a", 'libusdt.a at the top';
    ok !glob("$dir/libusdt.so*"), 'no libusdt.so beside it';
    my %exported;
    for my $o (glob "$dir/*.o") {
        my ($vst, $syms) = run_capture('readelf', '-sW', $o);
        $exported{$_->[7]} = 1 for grep { @$_ >= 8 && $_->[4] eq 'GLOBAL' && $_->[5] eq 'DEFAULT' && $_->[6] ne 'UND' }
                                    map { [split ' '] } split /\n/, $syms;
    }
    is join(' ', sort keys %exported),
        join(' ', sort qw(usdt_create_probe usdt_create_provider usdt_errstr usdt_error
                          usdt_fire_probe usdt_is_enabled usdt_probe_release
                          usdt_provider_add_probe usdt_provider_disable usdt_provider_dof
                          usdt_provider_enable usdt_provider_free usdt_provider_path
                          usdt_provider_remove_probe
                          usdt_jit_create usdt_jit_code usdt_jit_write usdt_jit_semaphore
                          usdt_jit_add_site usdt_jit_publish usdt_jit_path
                          usdt_jit_errstr usdt_jit_free)),
        'only the public API has default visibility';
    my ($ast, $all) = run_capture('nm', '-g', '--defined-only', "$dir/libusdt.a");
    my @unprefixed = grep { !/^usdt_/ } map { (split ' ')[2] // () } grep { / [A-Z] / } split /\n/, $all;
    is_deeply \@unprefixed, [], 'every global symbol of the archive starts with usdt_';
}
done_testing;
