"""The bash, zsh and fish scripts that rnntool.cli.completions writes, rendered from a CommandSpec tree.

Each script walks the words typed so far to find the command path (``rnntool tokenize train``),
skipping option values, then offers subcommands, options, an option's choices, model names from
the registry directory, or files. Everything is static: no Python runs at tab time.
"""


from rnntool.cli.completions import HEADER, PROG, CommandSpec


# -- quoting --------------------------------------------------------------------------------------


def _sq(text: str) -> str:
    """Single-quoted for bash/zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


def _fish_q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _all_names(cmd: CommandSpec) -> list[str]:
    return [n for o in cmd.options for n in o.names]


def _value_cases(tree: CommandSpec, fmt) -> list[str]:
    lines = []
    for cmd in tree.walk():
        for opt in cmd.options:
            if not opt.value:
                continue
            kind = opt.value + ("".join(" " + c for c in opt.choices) if opt.value in ("choice", "model") else "")
            lines.append(fmt(cmd.path, opt.names, kind))
    return lines


# -- bash -------------------------------------------------------------------------------------------


def render_bash(tree: CommandSpec) -> str:
    subs = "\n".join(
        f"        {_sq(c.path)}) _rnntool_ret={_sq(' '.join(s.path.rsplit(' ', 1)[1] for s in c.subcommands))} ;;"
        for c in tree.walk() if c.subcommands
    )
    opts = "\n".join(
        f"        {_sq(c.path)}) _rnntool_ret={_sq(' '.join(_all_names(c)))} ;;" for c in tree.walk() if c.options
    )
    values = "\n".join(_value_cases(
        tree, lambda path, names, kind: "        " + "|".join(_sq(f"{path}|{n}") for n in names)
        + f") _rnntool_ret={_sq(kind)} ;;"))
    args = "|".join(_sq(c.path) for c in tree.walk() if c.takes_arguments) or "''"
    model_args = "\n".join(f"        {_sq(c.path)}) _rnntool_ret={_sq(' '.join(['model', *c.argument_kinds]))} ;;"
                           for c in tree.walk() if c.argument_kinds is not None)
    return f"""# bash completion for rnntool -- {HEADER}.
# Use: source this file, or copy it to ~/.local/share/bash-completion/completions/rnntool

_rnntool_subcommands() {{  # the subcommands of command path $1
    case "$1" in
{subs}
        *) _rnntool_ret='' ;;
    esac
}}

_rnntool_options() {{  # the options of command path $1
    case "$1" in
{opts}
        *) _rnntool_ret='' ;;
    esac
}}

_rnntool_option_value() {{  # what option $2 of command path $1 takes: '' (a flag), text, file, dir, model, choice ...
    case "$1|$2" in
{values}
        *) _rnntool_ret='' ;;
    esac
}}

_rnntool_takes_arguments() {{
    case "$1" in
        {args}) return 0 ;;
    esac
    return 1
}}

_rnntool_argument_models() {{  # 'model KIND...' when the arguments of command path $1 are model references
    case "$1" in
{model_args}
        *) _rnntool_ret='' ;;
    esac
}}

_rnntool_kind_ok() {{  # model directory $1 holds one of the kinds $2... (none given: any kind)
    local dir="$1" v latest=-1 k
    shift
    (( $# )) || return 0
    for v in "$dir"/[0-9]*; do
        v="${{v##*/}}"
        [[ "$v" =~ ^[0-9]+$ ]] && (( v > latest )) && latest=$v
    done
    (( latest >= 0 )) || return 1
    for k in "$@"; do
        grep -q '"kind": *"'"$k"'"' "$dir/$latest/manifest.json" 2>/dev/null && return 0
    done
    return 1
}}

_rnntool_models() {{  # model names (and NAME@VERSION / NAME@ALIAS) in the registry $1 of the kinds $3...
    local root="$1" cur="$2" d name
    shift 2
    if [[ -z "$root" ]]; then
        if [[ -n "$RNNTOOL_HOME" ]]; then root="$RNNTOOL_HOME"
        elif [[ -d "$HOME/Library/Application Support/rnntool" ]]; then root="$HOME/Library/Application Support/rnntool"
        else root="${{XDG_DATA_HOME:-$HOME/.local/share}}/rnntool"
        fi
    fi
    root="${{root/#\\~/$HOME}}"
    [[ -d "$root/models" ]] || return 0
    if [[ "$cur" == *@* ]]; then
        name="${{cur%%@*}}"
        [[ -d "$root/models/$name" ]] && _rnntool_kind_ok "$root/models/$name" "$@" || return 0
        for d in "$root/models/$name"/[0-9]* "$root/models/$name"/aliases/*; do
            [[ -e "$d" ]] && COMPREPLY+=("$name@${{d##*/}}")
        done
    else
        for d in "$root/models"/*/; do
            d="${{d%/}}"
            [[ -e "$d" ]] && _rnntool_kind_ok "$d" "$@" && COMPREPLY+=("${{d##*/}}")
        done
    fi
    local matches=() m
    for m in "${{COMPREPLY[@]}}"; do
        [[ "$m" == "$cur"* ]] && matches+=("$m")
    done
    COMPREPLY=("${{matches[@]}}")
}}

_rnntool() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmdpath="rnntool" valueopt="" registry="" i w _rnntool_ret=''
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        if [[ "$w" == -* ]]; then
            _rnntool_option_value "$cmdpath" "$w"
            [[ -z "$_rnntool_ret" ]] && continue
            if ((i + 1 == COMP_CWORD)); then valueopt="$w"; break; fi
            ((i++))
            if [[ "${{COMP_WORDS[i]}}" == "=" ]]; then  # --opt=value, split by COMP_WORDBREAKS
                if ((i + 1 == COMP_CWORD)); then valueopt="$w"; break; fi
                ((i++))
            fi
            [[ "$w" == --registry ]] && registry="${{COMP_WORDS[i]}}"
        else
            _rnntool_subcommands "$cmdpath"
            [[ " $_rnntool_ret " == *" $w "* ]] && cmdpath="$cmdpath $w"
        fi
    done
    if [[ -n "$valueopt" ]]; then
        [[ "$cur" == "=" ]] && cur=""
        _rnntool_option_value "$cmdpath" "$valueopt"
        case "$_rnntool_ret" in
            choice\\ *) COMPREPLY=($(compgen -W "${{_rnntool_ret#choice }}" -- "$cur")) ;;
            dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
            model*) _rnntool_models "$registry" "$cur" ${{_rnntool_ret#model}}
                   compopt -o filenames 2>/dev/null
                   local f; while IFS= read -r f; do COMPREPLY+=("$f"); done < <(compgen -f -- "$cur") ;;
            file) ;;  # empty: bash's default filename completion (complete -o default)
            *) compopt +o default +o bashdefault 2>/dev/null ;;
        esac
        return 0
    fi
    if [[ "$cur" == -* ]]; then
        _rnntool_options "$cmdpath"
        COMPREPLY=($(compgen -W "$_rnntool_ret" -- "$cur"))
        return 0
    fi
    _rnntool_subcommands "$cmdpath"
    if [[ -n "$_rnntool_ret" ]]; then
        COMPREPLY=($(compgen -W "$_rnntool_ret" -- "$cur"))
        return 0
    fi
    _rnntool_argument_models "$cmdpath"
    if [[ -n "$_rnntool_ret" ]]; then  # model references (or a bundle directory)
        _rnntool_models "$registry" "$cur" ${{_rnntool_ret#model}}
        compopt -o filenames 2>/dev/null
        local f; while IFS= read -r f; do COMPREPLY+=("$f"); done < <(compgen -d -- "$cur")
        return 0
    fi
    _rnntool_takes_arguments "$cmdpath" || compopt +o default +o bashdefault 2>/dev/null
    return 0  # arguments are files: bash's default completion
}}

complete -o bashdefault -o default -F _rnntool rnntool
"""


# -- zsh --------------------------------------------------------------------------------------------


def _zsh_item(name: str, help: str) -> str:
    return _sq(name.replace(":", "\\:") + (":" + help if help else ""))


def render_zsh(tree: CommandSpec) -> str:
    subs = []
    for c in tree.walk():
        if not c.subcommands:
            continue
        names = " ".join(s.path.rsplit(" ", 1)[1] for s in c.subcommands)
        items = " ".join(_zsh_item(s.path.rsplit(" ", 1)[1], s.help) for s in c.subcommands)
        subs.append(f"    ({_sq(c.path)}) REPLY={_sq(names)}; reply=({items}) ;;")
    opts = []
    for c in tree.walk():
        if c.options:
            items = " ".join(_zsh_item(n, o.help) for o in c.options for n in o.names)
            opts.append(f"    ({_sq(c.path)}) reply=({items}) ;;")
    values = _value_cases(
        tree, lambda path, names, kind: "    (" + "|".join(_sq(f"{path}|{n}") for n in names)
        + f") REPLY={_sq(kind)} ;;")
    args = "|".join(_sq(c.path) for c in tree.walk() if c.takes_arguments) or "''"
    model_args = [f"    ({_sq(c.path)}) REPLY={_sq(' '.join(['model', *c.argument_kinds]))} ;;"
                  for c in tree.walk() if c.argument_kinds is not None]
    nl = "\n"
    return f"""#compdef rnntool
# zsh completion for rnntool -- {HEADER}.
# Use: put this file in a directory on $fpath (e.g. ~/.zfunc, with fpath+=~/.zfunc before compinit).

_rnntool_subcommands() {{  # REPLY: names, reply: name:description
  case $1 in
{nl.join(subs)}
    (*) REPLY=''; reply=() ;;
  esac
}}

_rnntool_options() {{
  case $1 in
{nl.join(opts)}
    (*) reply=() ;;
  esac
}}

_rnntool_option_value() {{  # '' (a flag), text, file, dir, model, choice ...
  case "$1|$2" in
{nl.join(values)}
    (*) REPLY='' ;;
  esac
}}

_rnntool_argument_models() {{  # 'model KIND...' when the arguments of command path $1 are model references
  case $1 in
{nl.join(model_args)}
    (*) REPLY='' ;;
  esac
}}

_rnntool_kind_ok() {{  # model directory $1 holds one of the kinds $2... (none given: any kind)
  local dir=$1 v k
  local -i latest=-1
  shift
  (( $# )) || return 0
  for v in $dir/<->(N); do (( ${{v:t}} > latest )) && latest=${{v:t}}; done
  (( latest >= 0 )) || return 1
  for k in "$@"; do
    grep -q '"kind": *"'"$k"'"' $dir/$latest/manifest.json 2>/dev/null && return 0
  done
  return 1
}}

_rnntool_models() {{  # model names (NAME@VERSION, NAME@ALIAS) in the registry $1 of the kinds $3...
  local root=$1 cur=$2 d
  shift 2
  local -a names
  if [[ -z $root ]]; then
    if [[ -n $RNNTOOL_HOME ]]; then root=$RNNTOOL_HOME
    elif [[ -d "$HOME/Library/Application Support/rnntool" ]]; then root="$HOME/Library/Application Support/rnntool"
    else root=${{XDG_DATA_HOME:-$HOME/.local/share}}/rnntool
    fi
  fi
  root=${{~root}}
  [[ -d $root/models ]] || return 0
  if [[ $cur == *@* ]]; then
    local name=${{cur%%@*}}
    [[ -d $root/models/$name ]] && _rnntool_kind_ok $root/models/$name "$@" || return 0
    for d in $root/models/$name/[0-9]*(N) $root/models/$name/aliases/*(N); do names+=("$name@${{d:t}}"); done
  else
    for d in $root/models/*(N/); do _rnntool_kind_ok $d "$@" && names+=("${{d:t}}"); done
  fi
  (( ${{#names}} )) && compadd -X models -a names
}}

_rnntool() {{
  local cmdpath=rnntool valueopt='' registry='' w REPLY
  local -a reply
  local -i i
  for (( i = 2; i < CURRENT; i++ )); do
    w=${{words[i]}}
    if [[ $w == -* ]]; then
      [[ $w == *=* ]] && continue
      _rnntool_option_value "$cmdpath" "$w"
      [[ -z $REPLY ]] && continue
      if (( i + 1 == CURRENT )); then valueopt=$w; break; fi
      (( i++ ))
      [[ $w == --registry ]] && registry=${{words[i]}}
    else
      _rnntool_subcommands "$cmdpath"
      [[ " $REPLY " == *" $w "* ]] && cmdpath="$cmdpath $w"
    fi
  done
  local cur=${{words[CURRENT]}}
  if [[ -z $valueopt && $cur == -*=* ]]; then
    valueopt=${{cur%%=*}}
    compset -P '*='
    cur=${{cur#*=}}
  fi
  if [[ -n $valueopt ]]; then
    _rnntool_option_value "$cmdpath" "$valueopt"
    case $REPLY in
      (choice\\ *) local -a vals; vals=(${{=REPLY#choice }}); compadd -a vals ;;
      (dir) _files -/ ;;
      (file) _files ;;
      (model*) _rnntool_models "$registry" "$cur" ${{=REPLY#model}}; _files ;;
    esac
    return 0
  fi
  if [[ $cur == -* ]]; then
    _rnntool_options "$cmdpath"
    _describe -t options option reply
    return 0
  fi
  _rnntool_subcommands "$cmdpath"
  if (( ${{#reply}} )); then
    _describe -t commands command reply
    return 0
  fi
  _rnntool_argument_models "$cmdpath"
  if [[ -n $REPLY ]]; then  # model references (or a bundle directory)
    _rnntool_models "$registry" "$cur" ${{=REPLY#model}}
    _files -/
    return 0
  fi
  case $cmdpath in
    ({args}) _files ;;
  esac
  return 0
}}

if [[ $funcstack[1] == _rnntool ]]; then
  _rnntool "$@"
else
  compdef _rnntool rnntool
fi
"""


# -- fish -------------------------------------------------------------------------------------------


def render_fish(tree: CommandSpec) -> str:
    paths = " ".join(_fish_q(c.path) for c in tree.walk() if c.path != PROG)
    value_opts = " ".join(
        _fish_q(f"{c.path}|{n}") for c in tree.walk() for o in c.options if o.value for n in o.names
    )
    lines = []
    for c in tree.walk():
        cond = _fish_q(f'__rnntool_at "{c.path}"')
        for s in c.subcommands:
            name = s.path.rsplit(" ", 1)[1]
            lines.append(f"complete -c rnntool -n {cond} -a {name} -d {_fish_q(s.help)}")
        for o in c.options:
            spec = []
            for n in o.names:
                if n.startswith("--"):
                    spec.append(f"-l {n[2:]}")
                elif len(n) == 2:
                    spec.append(f"-s {n[1:]}")
                else:
                    spec.append(f"-o {n[1:]}")
            if o.value == "choice":
                spec.append(f"-x -a {_fish_q(' '.join(o.choices))}")
            elif o.value == "dir":
                spec.append("-x -a '(__fish_complete_directories (commandline -ct))'")
            elif o.value == "file":
                spec.append("-r -F")
            elif o.value == "model":
                spec.append(f"-r -F -a {_fish_q('(__rnntool_models ' + ' '.join(o.choices) + ')')}")
            elif o.value == "text":
                spec.append("-x")
            lines.append(f"complete -c rnntool -n {cond} {' '.join(spec)} -d {_fish_q(o.help)}")
        if c.argument_kinds is not None:
            models = _fish_q("(__rnntool_models " + " ".join(c.argument_kinds) + ")")
            lines.append(f"complete -c rnntool -n {cond} -a {models} -d model")
            lines.append(f"complete -c rnntool -n {cond} -a '(__fish_complete_directories (commandline -ct))'")
        elif c.takes_arguments and not c.subcommands:
            lines.append(f"complete -c rnntool -n {cond} -F")
    nl = "\n"
    return f"""# fish completion for rnntool -- {HEADER}.
# Use: copy this file to ~/.config/fish/completions/rnntool.fish

set -g __rnntool_paths {paths}
set -g __rnntool_value_opts {value_opts}

function __rnntool_path --description 'The rnntool command path of the command line'
    set -l path rnntool
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $w
            contains -- "$path|$w" $__rnntool_value_opts; and set skip 1
        else if contains -- "$path $w" $__rnntool_paths
            set path "$path $w"
        end
    end
    echo $path
end

function __rnntool_at
    test (__rnntool_path) = "$argv[1]"
end

function __rnntool_models --description 'Model names in the rnntool registry (of the kinds given, else any)'
    set -l kinds $argv
    set -l root $RNNTOOL_HOME
    set -l words (commandline -opc)
    set -l i (contains -i -- --registry $words)
    and set root $words[(math $i + 1)]
    if test -z "$root"
        if test -d "$HOME/Library/Application Support/rnntool"
            set root "$HOME/Library/Application Support/rnntool"
        else if set -q XDG_DATA_HOME
            set root $XDG_DATA_HOME/rnntool
        else
            set root $HOME/.local/share/rnntool
        end
    end
    set -l cur (commandline -ct)
    if string match -q -- '*@*' $cur
        set -l name (string split -m 1 @ -- $cur)[1]
        __rnntool_kind_ok $root/models/$name $kinds; or return
        for d in $root/models/$name/[0-9]* $root/models/$name/aliases/*
            echo $name@(basename $d)
        end
        return
    end
    for d in $root/models/*/
        __rnntool_kind_ok $d $kinds; and basename $d
    end
end

function __rnntool_kind_ok --description 'Model directory $argv[1] holds one of the kinds $argv[2..] (none: any)'
    set -l dir (string trim -r -c / -- $argv[1])
    set -q argv[2]; or return 0
    set -l latest (for v in $dir/*; string match -qr '^[0-9]+$' -- (basename $v); and basename $v; end | sort -n | tail -1)
    test -n "$latest"; or return 1
    for k in $argv[2..-1]
        grep -q '"kind": *"'$k'"' $dir/$latest/manifest.json 2>/dev/null; and return 0
    end
    return 1
end

complete -c rnntool -f
{nl.join(lines)}
"""
