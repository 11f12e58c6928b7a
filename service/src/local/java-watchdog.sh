#!/bin/sh
# Runs `java "$@"` (DynamoDB Local) and stops it as soon as the Node process that
# started it goes away, even when that process dies from SIGKILL: Node holds our
# stdin, and when Node dies the pipe closes. No orphaned Java process, ever.
java "$@" &
child=$!
trap 'kill "$child" 2>/dev/null; exit 0' INT TERM HUP
exec 3<&0
( cat <&3 >/dev/null; kill "$child" 2>/dev/null ) &
watcher=$!
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
