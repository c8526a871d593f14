#!/bin/sh
# Runs a command in a private network namespace with its own loopback (root, Linux).
# Parallel test runs on one machine then cannot collide on the fixed 127.0.x.y ports the
# suites bind: each gets the whole 127.0.0.0/8 to itself. Usage: scripts/netns-run.sh npx vitest run ...
exec unshare -n sh -c 'ip link set lo up && exec "$@"' netns-run "$@"
