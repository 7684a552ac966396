#!/usr/bin/env bash
# Retrain a language model on a growing corpus; publish a new version only when the data or the
# settings changed, move @prod only when the new version beats it, and keep the registry small.
# Called from cron (see docs/cron.md). Prints one summary line on stdout (what a cron mail shows).
#
#   NAME      model name in the registry          (default: corpus-lm)
#   DATA      the training text, which grows      (required)
#   VALID     fixed validation text               (required: the same yardstick every cycle)
#   MAX_TIME  training budget per cycle           (default: 20m)
#   KEEP      versions kept besides aliased ones  (default: 5)
#   LOG       log file                            (default: $RNNTOOL_HOME/logs/$NAME.log)
#   TRAIN_ARGS extra options for `rnntool train lm`, e.g. "--cell gru --hidden-dim 512"
set -euo pipefail
: "${RNNTOOL_HOME:?set RNNTOOL_HOME to the registry directory}"
: "${DATA:?set DATA to the training text}"
: "${VALID:?set VALID to the validation text}"
NAME=${NAME:-corpus-lm}
KEEP=${KEEP:-5}
LOG=${LOG:-$RNNTOOL_HOME/logs/$NAME.log}
export RNNTOOL_HOME

status=0
# shellcheck disable=SC2086  # TRAIN_ARGS is a list of options
rnntool train lm "$DATA" --valid "$VALID" --name "$NAME" \
    --if-changed --promote prod --max-time "${MAX_TIME:-20m}" \
    --log-file "$LOG" -q ${TRAIN_ARGS:-} || status=$?
if [ "$status" -eq 75 ]; then  # EX_TEMPFAIL: the previous cycle is still training
    echo "$NAME: previous run still training; this cycle skipped"
    exit 0
fi
[ "$status" -eq 0 ] || exit "$status"
rnntool models gc "$NAME" --keep "$KEEP" -q >>"$LOG" 2>&1
