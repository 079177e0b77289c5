# Playing a binding: build the library as bindings do (`make clean all`
# with ARCH, CC and CFLAGS on the command line), link libusdt.a into a
# shared module, dlopen it with RTLD_NOW from a host program, and fire a
# probe that bpftrace traces. This proves the archive is self-contained
# and position-independent.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use USDTTest qw(bpftrace run_capture top_dir driver tracer_missing tracer_stop tracer_wait);

my $top = top_dir();
my $tmp = tempdir(CLEANUP => 1);
my $lib = "$tmp/libusdt";
mkdir $lib;
system('cp', glob("$top/*.[chs]"), "$top/Makefile", $lib) == 0 or die;
my ($st, $out) = run_capture('make', '-C', $lib, 'clean', 'all', 'ARCH=x64', 'CC=gcc', 'CFLAGS=-O1 -g');
is $st, 0, 'make clean all ARCH=x64 CC=gcc CFLAGS="-O1 -g"' or diag $out;

open my $m, '>', "$tmp/module.c" or die;
print $m <<'C';
/* the binding: a shared module with libusdt.a linked in */
#include "usdt.h"
#include <stdint.h>
static usdt_provider_t *provider;
static usdt_probedef_t *probe;
int binding_start(void) {
    const char *types[2] = { "int", "char *" };
    provider = usdt_create_provider("binding", "module");
    probe = usdt_create_probe("fn", "call", 2, types);
    return usdt_provider_add_probe(provider, probe) || usdt_provider_enable(provider);
}
int binding_enabled(void) { return usdt_is_enabled(probe->probe); }
void binding_fire(long n) {
    void *args[2] = { (void *)(intptr_t)n, "from the module" };
    usdt_fire_probe(probe->probe, 2, args);
}
void binding_stop(void) { usdt_probe_release(probe); usdt_provider_free(provider); }
C
close $m;
open my $h, '>', "$tmp/host.c" or die;
print $h <<'C';
/* the language runtime: loads the binding with dlopen(RTLD_NOW) */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char line[64];
    void *mod = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    int (*start)(void), (*enabled)(void);
    void (*fire)(long), (*stop)(void);
    (void)argc;
    if (!mod) { printf("dlopen: %s\n", dlerror()); return 1; }
    start = (int (*)(void))dlsym(mod, "binding_start");
    enabled = (int (*)(void))dlsym(mod, "binding_enabled");
    fire = (void (*)(long))dlsym(mod, "binding_fire");
    stop = (void (*)(void))dlsym(mod, "binding_stop");
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        if (!strcmp(line, "start\n")) printf("%s\n", start() ? "error" : "ok");
        else if (!strcmp(line, "pid\n")) printf("pid %d\n", (int)getpid());
        else if (!strncmp(line, "wait", 4)) { int i; for (i = 0; i < 2000 && !enabled(); i++) usleep(10000); printf("%d\n", enabled()); }
        else if (!strcmp(line, "fire\n")) { fire(31337); printf("fired\n"); }
        else if (!strcmp(line, "stop\n")) { stop(); printf("ok\n"); }
    }
    dlclose(mod);
    return 0;
}
C
close $h;
($st, $out) = run_capture('gcc', '-shared', '-fPIC', '-Wall', '-Wextra', "-I$lib", '-o', "$tmp/binding.so",
                          "$tmp/module.c", "$lib/libusdt.a");
is $st, 0, 'libusdt.a links into a shared module' or diag $out;
unlike $out, qr/warning/, 'without warnings (no text relocations, no executable stack)' or diag $out;
($st, $out) = run_capture('gcc', '-Wall', '-o', "$tmp/host", "$tmp/host.c");
is $st, 0, 'the host program builds' or diag $out;
my ($nst, $nm) = run_capture('nm', '-D', '--defined-only', "$tmp/binding.so");
my @usdt = sort grep { /^usdt_/ } map { (split ' ')[2] // () } split /\n/, $nm;
is "@usdt", join(' ', sort qw(usdt_create_probe usdt_create_provider usdt_errstr usdt_error
                              usdt_fire_probe usdt_is_enabled usdt_probe_release
                              usdt_provider_add_probe usdt_provider_disable usdt_provider_dof
                              usdt_provider_enable usdt_provider_free usdt_provider_path
                              usdt_provider_remove_probe)),
    'of libusdt, the module exports the public API and nothing internal';

my $d = driver(_exe => "$tmp/host $tmp/binding.so");
is $d->cmd('start'), 'ok', 'the binding enables its provider';
my ($pid) = $d->cmd('pid') =~ /(\d+)/;
SKIP: {
    my $why = tracer_missing('bpftrace');
    skip $why, 4 if $why;
    my $bt = bpftrace('-p', $pid, 'usdt::binding:call { printf("%lld %s\n", arg0, str(arg1)); }');
    is $d->cmd('wait'), '1', 'is-enabled under bpftrace';
    is $d->cmd('fire'), 'fired';
    ok tracer_wait($bt, qr/^31337 from the module$/m), 'bpftrace printed the fire';
    like tracer_stop($bt), qr/^31337 from the module$/m, 'bpftrace traced the probe fired from the module';
}
is $d->cmd('stop'), 'ok';
is $d->close, 0;
done_testing;
