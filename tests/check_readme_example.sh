#!/usr/bin/env bash
# The README's first C example must be examples/ten_lines.c's code: every
# line of the README block (but the URL's) appears in the file, in order.
#
#   check_readme_example.sh README.md examples/ten_lines.c
set -euo pipefail
readme=$1 file=$2
block=$(awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' "$readme")
[ -n "$block" ] || { echo "no C block in $readme" >&2; exit 1; }
body=$(sed 's/^ *//' "$file")
pos=0
while IFS= read -r line; do
    line=${line#"${line%%[! ]*}"}
    case "$line" in '' | '#include'* | 'const char *url'*) continue ;; esac
    n=$(printf '%s\n' "$body" | tail -n +"$((pos + 1))" | grep -nxF -- "$line" | head -n 1 | cut -d: -f1)
    if [ -z "$n" ]; then
        echo "README line not in $file (in order): $line" >&2
        exit 1
    fi
    pos=$((pos + n))
done <<<"$block"
echo "README example matches $file"
