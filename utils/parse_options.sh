# Kaldi-style command-line options for shell recipes. Source it after declaring the
# script's variables with their defaults:
#   stage=0
#   stop_stage=5      # a trailing comment becomes the option's help text
#   . utils/parse_options.sh
# Then `--stop-stage 4` or `--stop-stage=4` sets $stop_stage (dashes become underscores).
# Any variable declared before sourcing can be set; an unknown option is an error.
# A variable whose value is true/false only accepts true/false. Parsing stops at the
# first argument that is not an option (or after `--`); the rest stays in "$@".
# --help / -h prints the script's header comment and its options with current values.
# Works under `set -euo pipefail`; every helper name starts with __po_ to avoid clashes.

__po_die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# The comment block after the shebang, then every `name=value` line that precedes the
# line sourcing this file, shown as `--name <current value>  # its comment`.
__po_help() {
  local __po_line __po_var __po_comment
  sed -n '2,${/^#/!q;s/^# \{0,1\}//;p;}' "$0"
  echo
  echo "Options (current values):"
  while IFS= read -r __po_line; do
    case "$__po_line" in *parse_options.sh*) break ;; esac
    [[ "$__po_line" =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]] || continue
    __po_var=${BASH_REMATCH[1]}
    __po_comment=""
    [[ "$__po_line" =~ [[:space:]]#[[:space:]]*(.*)$ ]] && __po_comment=${BASH_REMATCH[1]}
    __po_line="--${__po_var//_/-} ${!__po_var-}"
    if [ -n "$__po_comment" ]; then printf '  %-24s # %s\n' "$__po_line" "$__po_comment"
    else printf '  %s\n' "$__po_line"; fi
  done < "$0"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) __po_help; exit 0 ;;
    --) shift; break ;;
    --*=*) __po_opt=${1%%=*}; __po_value=${1#*=}; shift ;;
    --*)
      __po_opt=$1
      [ $# -ge 2 ] || __po_die "option $__po_opt needs a value"
      __po_value=$2; shift 2 ;;
    *) break ;;
  esac
  __po_name=${__po_opt#--}
  __po_name=${__po_name//-/_}
  if ! [[ "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [[ "$__po_name" == __po_* ]] \
      || ! declare -p "$__po_name" >/dev/null 2>&1; then
    __po_die "unknown option $__po_opt (see $(basename "$0") --help)"
  fi
  case "${!__po_name-}" in
    true|false)
      case "$__po_value" in
        true|false) ;;
        *) __po_die "option $__po_opt expects true or false, got '$__po_value'" ;;
      esac ;;
  esac
  printf -v "$__po_name" '%s' "$__po_value"
done
unset -v __po_opt __po_name __po_value
unset -f __po_die __po_help
true
