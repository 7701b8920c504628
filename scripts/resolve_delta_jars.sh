#!/usr/bin/env bash
# Try to fetch the Delta JVM jars (for the delta-spark engine) into .jars/. Maven Central may be
# unreachable (it is on the development machines): then say so; the embedded delta-rs engine is used.
set -u
DELTA_VERSION=${DELTA_VERSION:-4.0.0}
JARS_DIR=${1:-.jars}
if ls "$JARS_DIR"/delta-spark_2.13-"$DELTA_VERSION".jar >/dev/null 2>&1; then
  echo "Delta engine: delta-spark available (jars already in $JARS_DIR)."
  exit 0
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "Delta engine: delta-rs (embedded). Maven is not installed, so the Delta JVM jars were not resolved."
  exit 0
fi
tmp=$(mktemp -d)
ok=1
for art in "io.delta:delta-spark_2.13:$DELTA_VERSION" "io.delta:delta-storage:$DELTA_VERSION"; do
  if ! timeout 120 mvn -q -B dependency:copy -Dartifact="$art" -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
    ok=0; break
  fi
done
if [ "$ok" = 1 ]; then
  mkdir -p "$JARS_DIR" && mv "$tmp"/delta-*.jar "$JARS_DIR"/
  echo "Delta engine: delta-spark available (jars resolved into $JARS_DIR); lake.engine=auto will use it."
else
  echo "Delta engine: delta-rs (embedded). Maven Central is unreachable from this machine, so the Delta JVM"
  echo "  jars (io.delta:delta-spark_2.13:$DELTA_VERSION) could not be resolved; lake.engine=auto uses delta-rs."
fi
rm -rf "$tmp"
exit 0
