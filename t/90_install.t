# make install into a temporary DESTDIR, then build against it the way a
# user would: only `pkg-config --cflags --libs libusdt`, statically and
# dynamically, and from C++. Then make uninstall removes every file.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use File::Find ();
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my $top = top_dir();
my $tmp = tempdir(CLEANUP => 1);
my $dest = "$tmp/dest";
my $prefix = '/opt/usdt-test';
my ($st, $out) = run_capture('make', '-C', $top, 'install', "DESTDIR=$dest", "PREFIX=$prefix");
is $st, 0, 'make install' or diag $out;

my $root = "$dest$prefix";
ok -f "$root/include/usdt.h", 'include/usdt.h';
ok -f "$root/lib/libusdt.a", 'lib/libusdt.a';
ok -f "$root/lib/libusdt.so.1", 'lib/libusdt.so.1';
is readlink("$root/lib/libusdt.so"), 'libusdt.so.1', 'lib/libusdt.so -> libusdt.so.1';
ok -f "$root/lib/pkgconfig/libusdt.pc", 'lib/pkgconfig/libusdt.pc';
ok -f "$root/share/man/man3/$_", "man3/$_" for qw(usdt.3 usdt_create_provider.3 usdt_is_enabled.3 usdt_provider_path.3 usdt_jit.3);
is readlink("$root/share/man/man3/usdt_fire_probe.3"), 'usdt_is_enabled.3', 'man usdt_fire_probe finds its page';
is readlink("$root/share/man/man3/usdt_jit_create.3"), 'usdt_jit.3', 'man usdt_jit_create finds its page';
my ($mst, $lint) = run_capture('sh', '-c', "cd $top/man && mandoc -Tlint -W warning *.3");
is "$mst $lint", '0 ', 'the man pages lint clean (mandoc -Tlint -W warning)';
my ($sst, $soname) = run_capture('readelf', '-dW', "$root/lib/libusdt.so.1");
like $soname, qr/\(SONAME\)\s+Library soname: \[libusdt\.so\.1\]/, 'SONAME libusdt.so.1';
my ($nst, $dyn) = run_capture('nm', '-D', '--defined-only', "$root/lib/libusdt.so.1");
is join(' ', sort map { (split ' ')[2] } grep { /\S/ } split /\n/, $dyn),
   join(' ', sort qw(usdt_create_probe usdt_create_provider usdt_errstr usdt_error
                     usdt_fire_probe usdt_is_enabled usdt_probe_release
                     usdt_provider_add_probe usdt_provider_disable usdt_provider_dof
                     usdt_provider_enable usdt_provider_free usdt_provider_path
                     usdt_provider_remove_probe
                     usdt_jit_create usdt_jit_code usdt_jit_write usdt_jit_semaphore
                     usdt_jit_add_site usdt_jit_publish usdt_jit_path
                     usdt_jit_errstr usdt_jit_free)), 'the shared library exports exactly the API';

# pkg-config sees the installed file through PKG_CONFIG_SYSROOT_DIR
local $ENV{PKG_CONFIG_PATH} = "$root/lib/pkgconfig";
local $ENV{PKG_CONFIG_SYSROOT_DIR} = $dest;
my ($pst, $flags) = run_capture('pkg-config', '--cflags', '--libs', 'libusdt');
is $pst, 0, 'pkg-config --cflags --libs libusdt' or diag $flags;
$flags =~ s/\s+$//;
is $flags, "-I$root/include -L$root/lib -lusdt";

open my $c, '>', "$tmp/prog.c" or die;
print $c <<'C';
#include <usdt.h>
#include <stdio.h>
int main(void) {
    const char *types[1] = { "int" };
    usdt_provider_t *p = usdt_create_provider("installed", "mod");
    usdt_probedef_t *d = usdt_create_probe("fn", "p", 1, types);
    void *args[1] = { (void *)1 };
    if (usdt_provider_add_probe(p, d) || usdt_provider_enable(p)) { printf("error %s\n", usdt_errstr(p)); return 1; }
    usdt_fire_probe(d->probe, 1, args);
    printf("%s\n", usdt_provider_path(p) ? "published" : "not published");
    usdt_probe_release(d);
    usdt_provider_free(p);
    return 0;
}
C
close $c;
system('cp', "$tmp/prog.c", "$tmp/prog.cc") == 0 or die;
my @flags = split ' ', $flags;
for my $build (['static', 'cc', "$tmp/prog.c", '-static-libgcc', "-Wl,-Bstatic", @flags, '-Wl,-Bdynamic'],
               ['dynamic', 'cc', "$tmp/prog.c", @flags, "-Wl,-rpath,$root/lib"],
               ['C++', 'c++', "$tmp/prog.cc", @flags, "-Wl,-rpath,$root/lib"]) {
    my ($name, $cc, @args) = @$build;
    my ($cst, $cout) = run_capture($cc, '-Wall', '-Wextra', '-o', "$tmp/prog-$name", @args);
    is $cst, 0, "$name: builds with pkg-config's flags" or diag $cout;
    my ($rst, $rout) = run_capture("$tmp/prog-$name");
    is $rst, 0, "$name: runs";
    is $rout, "published\n", "$name: enables and fires";
    my ($lst, $ldd) = run_capture('ldd', "$tmp/prog-$name");
    if ($name eq 'static') {
        unlike $ldd, qr/libusdt/, 'static: libusdt linked in';
    } else {
        like $ldd, qr{libusdt\.so\.1 => \Q$root\E/lib/libusdt\.so\.1}, "$name: uses the installed libusdt.so.1";
    }
}

($st, $out) = run_capture('make', '-C', $top, 'uninstall', "DESTDIR=$dest", "PREFIX=$prefix");
is $st, 0, 'make uninstall' or diag $out;
my @left;
File::Find::find(sub { push @left, $File::Find::name if -f $_ || -l $_ }, $dest);
is_deeply \@left, [], 'nothing installed is left';
done_testing;
