#!/bin/sh
# make demo and make demo-jit: run an example and, as root with bpftrace,
# trace it live until it exits. Stops only the processes it started, by
# their pid.
#   sh examples/demo.sh PROGRAM BPFTRACE-PROBE-AND-ACTION
# e.g. sh examples/demo.sh hello 'usdt::hello:tick { printf(...); }'
set -u
cd "$(dirname "$0")"
program=$1
script=$2
./$program 8 &
pid=$!
trap 'kill $pid 2>/dev/null; [ -n "${bt:-}" ] && kill $bt 2>/dev/null' EXIT INT TERM
sleep 1
if [ "$(id -u)" = 0 ] && command -v bpftrace >/dev/null 2>&1; then
        echo "demo: tracing $program with bpftrace until it exits:"
        bpftrace -p $pid -e "$script" 2>/dev/null &
        bt=$!
        wait $pid
        wait $bt
        bt=
else
        echo "demo: run the command above as root (with bpftrace installed) to see the probe fire"
        wait $pid
fi
