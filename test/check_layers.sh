#!/usr/bin/env bash
# The layer rule of src/ (docs/architecture.md), checked on what the built
# objects really call: for every symbol an object file of ours uses and
# another one defines (nm), the caller must sit above the callee.
#
#   bash test/check_layers.sh [DIR]     (DIR: a built tree, default .)
#
# Layers, lowest first: base/ store/ core/ api/ enforce/, then
# src/hipaa_audit.c (module init, which may call anything).  Inside a folder a file may call only files
# listed before it in src/README.md.  Every .c under src/ must be listed
# there.  Calls that break the rule today are listed in
# test/layers-baseline.txt while the move is under way: a call against the
# rule that is not listed fails, and so does a listed one that is gone (the
# list only shrinks).
set -uo pipefail

dir=${1:-.}
readme=$dir/src/README.md
baseline=$dir/test/layers-baseline.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rank_of_folder() {
	case $1 in
		base) echo 1 ;; store) echo 2 ;; core) echo 3 ;;
		api) echo 4 ;; enforce) echo 5 ;; top) echo 6 ;; *) echo 0 ;;
	esac
}

# Order of files from src/README.md: "folder/file.c" at the start of a line.
grep -oE '^[[:space:]]*(base|store|core|api|enforce)/[a-z_]+\.c' "$readme" |
	sed 's/^[[:space:]]*//' >"$tmp/order"
bad=0
for c in $(cd "$dir/src" && ls */*.c); do
	if ! grep -qx "$c" "$tmp/order"; then
		echo "src/$c is not listed in src/README.md"
		bad=1
	fi
done

# name (folder/file) of each object, its rank and its position in its folder
declare -A rank pos
objs=()
for o in "$dir"/src/*/*.o "$dir"/src/hipaa_audit.o; do
	[ -f "$o" ] || { echo "no object files under $dir/src: build first"; exit 1; }
	rel=${o#"$dir"/src/}
	name=${rel%.o}
	if [ "$name" = hipaa_audit ]; then
		folder=top
	else
		folder=${name%%/*}
	fi
	rank[$name]=$(rank_of_folder "$folder")
	pos[$name]=$(grep -nx "$name.c" "$tmp/order" | cut -d: -f1)
	objs+=("$name")
	nm --defined-only "$o" | awk '$2 ~ /^[TDBRC]$/ {print $3}' | sort -u >"$tmp/def.${name//\//_}"
	nm -u "$o" | awk '{print $NF}' | sort -u >"$tmp/use.${name//\//_}"
done

: >"$tmp/found"
for a in "${objs[@]}"; do
	for b in "${objs[@]}"; do
		[ "$a" = "$b" ] && continue
		for sym in $(comm -12 "$tmp/use.${a//\//_}" "$tmp/def.${b//\//_}"); do
			ok=0
			fa=${a%%/*}
			fb=${b%%/*}
			if [ "${rank[$a]}" -gt "${rank[$b]}" ]; then
				ok=1
			elif [ "$fa" = "$fb" ] && [ "$a" != hipaa_audit ] &&
				[ -n "${pos[$a]}" ] && [ -n "${pos[$b]}" ] && [ "${pos[$b]}" -lt "${pos[$a]}" ]; then
				ok=1
			fi
			[ $ok = 0 ] && echo "$a -> $b $sym" >>"$tmp/found"
		done
	done
done
sort -o "$tmp/found" "$tmp/found"
grep -vE '^[[:space:]]*(#|$)' "$baseline" 2>/dev/null | sort >"$tmp/base"

new=$(comm -23 "$tmp/found" "$tmp/base")
gone=$(comm -13 "$tmp/found" "$tmp/base")
if [ -n "$new" ]; then
	echo "calls against the layers of src/ (docs/architecture.md):"
	echo "$new" | sed 's/^/  /'
	bad=1
fi
if [ -n "$gone" ]; then
	echo "listed in test/layers-baseline.txt but no longer made (remove them):"
	echo "$gone" | sed 's/^/  /'
	bad=1
fi
echo "layers: $(wc -l <"$tmp/found") call(s) against the rule, all listed in the baseline: $([ -z "$new" ] && echo yes || echo no)"
exit $bad
