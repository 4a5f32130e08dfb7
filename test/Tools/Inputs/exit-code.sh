#!/bin/sh
# Runs a command (its output passes through) and fails unless it exits with
# exactly the code given first: `not` accepts any failure, this proves the
# documented exit code 1 and no crash.
want=$1
shift
"$@"
got=$?
if [ "$got" -ne "$want" ]; then
  echo "exit-code.sh: exit code $got, expected $want: $*" >&2
  exit 1
fi
