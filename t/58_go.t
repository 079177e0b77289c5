# Sources any build system can compile: go-usdt vendors the library's
# sources, and the Go tool hands every .c and .s file of a cgo package to
# the C compiler, with no Makefile. A cgo package holding copies of the
# library's .c, .h and .s files builds with `go build` for amd64 and for
# GOARCH=386 (each .s file carries a Go build constraint), and the amd64
# program runs: it enables a provider and fires its probe.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use lib 't/lib';
use USDTTest qw(run_capture top_dir);

my $arch = (POSIX::uname())[4];
plan skip_all => "the cgo builds are checked on x86_64; this machine is $arch"
    if $arch ne 'x86_64';
if (system('sh', '-c', 'command -v go >/dev/null') != 0) {
    die "go is missing (golang-go): CI must run this test\n" if ($ENV{CI} // '') eq 'true';
    plan skip_all => 'go is missing: install golang-go (.ci/setup.sh does)';
}

my $top = top_dir();
my $tmp = tempdir(CLEANUP => 1);
mkdir "$tmp/$_" or die for qw(usdt cmd cache);
system('cp', glob("$top/usdt*.[ch]"), glob("$top/usdt_tracepoints_*.s"), "$tmp/usdt") == 0
    or die "cp: $?";

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh;
}
write_file("$tmp/go.mod", "module gousdt\n\ngo 1.19\n");
write_file("$tmp/usdt/usdt.go", <<'GO');
package usdt

/*
#cgo LDFLAGS: -lpthread
#include <stdint.h>
#include "usdt.h"

static int demo(void) {
	const char *types[1] = { "int" };
	usdt_provider_t *p = usdt_create_provider("gousdt", "go");
	usdt_probedef_t *d = usdt_create_probe("fn", "hit", 1, types);
	void *args[1] = { (void *)(intptr_t)42 };
	int rc;
	if (p == NULL || d == NULL || usdt_provider_add_probe(p, d) != 0)
		return -1;
	rc = usdt_provider_enable(p);
	if (rc == 0)
		usdt_fire_probe(d->probe, 1, args);
	usdt_provider_free(p);
	usdt_probe_release(d);
	return rc;
}
*/
import "C"

// Demo enables a provider, fires its probe once and frees it.
func Demo() int { return int(C.demo()) }
GO
write_file("$tmp/cmd/main.go", <<'GO');
package main

import (
	"fmt"
	"gousdt/usdt"
)

func main() { fmt.Printf("enable %d\n", usdt.Demo()) }
GO

my @env = ("HOME=$tmp", "GOCACHE=$tmp/cache", 'GOFLAGS=-mod=mod', 'CGO_ENABLED=1',
           'GOPROXY=off');
for my $goarch (qw(amd64 386)) {
    my ($st, $out) = run_capture('env', @env, "GOARCH=$goarch", 'sh', '-c',
                                 "cd $tmp && go build -o demo-$goarch ./cmd");
    is $st, 0, "go build for GOARCH=$goarch" or diag $out;
}
my ($st, $out) = run_capture("$tmp/demo-amd64");
is $st, 0, 'the amd64 program runs';
is $out, "enable 0\n", 'and enables its provider';
my ($fst, $file) = run_capture('file', "$tmp/demo-386");
like $file, qr/ELF 32-bit LSB .*Intel 80386/, 'the 386 program is a 32-bit x86 program';
done_testing;
