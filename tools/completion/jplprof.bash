# bash completion for jplprof: commands, each command's options (read from
# its --help), and model names (from `jplprof models`) after --model/--models.
_jplprof()
{
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(jplprof --help 2>/dev/null | awk '/^  [a-z]/ {print $1}')" -- "$cur"))
        return
    fi
    cmd=${COMP_WORDS[1]}
    case $prev in
        --model|--models|layers)
            COMPREPLY=($(compgen -W "$(jplprof models 2>/dev/null | awk '{print $1}')" -- "$cur"))
            return ;;
        --device) COMPREPLY=($(compgen -W "cpu cuda" -- "$cur")); return ;;
        --format) COMPREPLY=($(compgen -W "csv jsonl trtexec" -- "$cur")); return ;;
        --granularity) COMPREPLY=($(compgen -W "layer op" -- "$cur")); return ;;
        --out|--dataset|--image|--trace|--plan|--json|--tegrastats)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(jplprof "$cmd" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9_-]*' | sort -u)" -- "$cur"))
    fi
}
complete -F _jplprof jplprof
