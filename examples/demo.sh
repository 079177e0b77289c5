#!/bin/sh
# make demo: run examples/hello and, as root with bpftrace, trace it live
# for a few seconds. Stops only the processes it started, by their pid.
set -u
cd "$(dirname "$0")"
./hello 8 &
hello=$!
trap 'kill $hello 2>/dev/null; [ -n "${bt:-}" ] && kill $bt 2>/dev/null' EXIT INT TERM
sleep 1
if [ "$(id -u)" = 0 ] && command -v bpftrace >/dev/null 2>&1; then
        echo "demo: tracing it with bpftrace until it exits:"
        bpftrace -p $hello -e 'usdt::hello:tick { printf("traced: %d %s\n", arg0, str(arg1)); }' 2>/dev/null &
        bt=$!
        wait $hello
        wait $bt
        bt=
else
        echo "demo: run the command above as root (with bpftrace installed) to see the probe fire"
        wait $hello
fi
