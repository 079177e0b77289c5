#!/bin/sh
# What `make test` and `make demo` need, on Debian: installs the packages
# when run as root, checks again that everything is there, mounts tracefs
# if it is empty, and otherwise says exactly what is missing. Shared by the
# Makefile and .ci/run.
#
#   sh .ci/setup.sh          install (root) or check (others)
#   CI=true sh .ci/setup.sh  the same; anything still missing is an error
set -u

PACKAGES="build-essential gcc-multilib clang perl binutils file gdb bpftrace linux-perf systemtap-sdt-dev valgrind qemu-user util-linux mandoc pkg-config libclang-rt-14-dev binutils-aarch64-linux-gnu libc6-dev-arm64-cross libgcc-12-dev-arm64-cross gdb-multiarch golang-go libbpf-dev"
# command -> package that provides it
NEEDS="cc:build-essential prove:perl readelf:binutils gdb:gdb bpftrace:bpftrace perf:linux-perf valgrind:valgrind clang:clang qemu-i386:qemu-user file:file unshare:util-linux mandoc:mandoc pkg-config:pkg-config qemu-aarch64:qemu-user aarch64-linux-gnu-ld:binutils-aarch64-linux-gnu gdb-multiarch:gdb-multiarch go:golang-go objdump:binutils"

# Sets $missing to the packages whose command, header or library is absent.
check() {
        missing=""
        for pair in $NEEDS; do
                cmd=${pair%%:*}
                command -v "$cmd" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
        done
        echo "#include <sys/sdt.h>" | cc -E -x c - >/dev/null 2>&1 || missing="$missing systemtap-sdt-dev"
        echo 'int main(void) { return 0; }' | cc -m32 -x c - -o /dev/null 2>/dev/null || missing="$missing gcc-multilib"
        echo 'int main(void) { return 0; }' | clang --target=aarch64-linux-gnu -x c - -o /dev/null 2>/dev/null ||
                missing="$missing libc6-dev-arm64-cross libgcc-12-dev-arm64-cross"
        [ -f /usr/include/bpf/usdt.bpf.h ] || missing="$missing libbpf-dev"
        echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
                clang -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null || missing="$missing libclang-rt-14-dev"
}

check
if [ -n "$missing" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                echo "setup: installing$missing"
                export DEBIAN_FRONTEND=noninteractive
                apt-get update -qq >/dev/null &&
                apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null ||
                        { echo "setup: apt-get install failed for: $PACKAGES" >&2; exit 1; }
                # apt-get can succeed and still leave a command out (a
                # package that no longer provides it, a PATH without it)
                check
                if [ -n "$missing" ]; then
                        echo "setup: still missing after apt-get install:$missing" >&2
                        exit 1
                fi
        else
                echo "setup: missing Debian packages:$missing" >&2
                echo "setup: install them as root: apt-get install$missing" >&2
                exit 1
        fi
fi

# Tracers need tracefs (uprobes are created through it).
if [ -d /sys/kernel/tracing ] && [ -z "$(ls -A /sys/kernel/tracing 2>/dev/null)" ]; then
        if [ "$(id -u)" = 0 ]; then
                mount -t tracefs nodev /sys/kernel/tracing ||
                        { echo "setup: cannot mount tracefs on /sys/kernel/tracing" >&2; exit 1; }
        else
                echo "setup: tracefs is not mounted; as root: mount -t tracefs nodev /sys/kernel/tracing" >&2
                exit 1
        fi
fi
if [ "$(id -u)" != 0 ]; then
        echo "setup: the tracer tests need root (bpftrace, perf and gdb -p attach to the test process)" >&2
        [ "${CI:-}" = true ] && exit 1
fi
exit 0
