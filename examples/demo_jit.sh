#!/bin/sh
# make demo-jit: run examples/jit (a toy JIT whose generated code holds a
# USDT probe site) and, as root with bpftrace, trace it live: each traced
# call prints its two arguments. Stops only the processes it started, by
# their pid.
set -u
cd "$(dirname "$0")"
./jit 8 &
jit=$!
trap 'kill $jit 2>/dev/null; [ -n "${bt:-}" ] && kill $bt 2>/dev/null' EXIT INT TERM
sleep 1
if [ "$(id -u)" = 0 ] && command -v bpftrace >/dev/null 2>&1; then
        echo "demo-jit: tracing it with bpftrace until it exits:"
        bpftrace -p $jit -e 'usdt::jitdemo:tick { printf("traced: tick(%d, %d)\n", arg0, arg1); }' 2>/dev/null &
        bt=$!
        wait $jit
        wait $bt
        bt=
else
        echo "demo-jit: run the command above as root (with bpftrace installed) to see the probe fire"
        wait $jit
fi
