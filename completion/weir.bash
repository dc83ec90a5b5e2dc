# bash completion for weir(8): commands, their options, and container ids and names from
# the records (`weir list --ids`, with the --config given on the line).
# shellcheck shell=bash

_weir_ids() {
	local cfg=("${@}")
	weir "${cfg[@]}" list --ids 2>/dev/null
}

_weir() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local commands="status list stats policy gc metrics top flows unload"
	local cfg=() cmd='' sub='' i w

	# the command is the first word that is not a global option or its argument
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [ -z "$cmd" ]; then
			case $w in
			-c | --config)
				cfg=(--config "${COMP_WORDS[i + 1]}")
				i=$((i + 1))
				;;
			--config=*) cfg=("$w") ;;
			-l | --log-level) i=$((i + 1)) ;;
			-*) ;;
			*) cmd=$w ;;
			esac
		elif [ "$cmd" = policy ] && [ -z "$sub" ] && [[ $w != -* ]]; then
			sub=$w
		fi
	done

	case $prev in
	-c | --config)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	-l | --log-level)
		mapfile -t COMPREPLY < <(compgen -W "error warn info debug" -- "$cur")
		return
		;;
	--sort)
		mapfile -t COMPREPLY < <(compgen -W "id name pod tx-bytes rx-bytes tx-packets
			rx-packets tx-limit rx-limit drops shaped guard retrans p50 p99 ct" -- "$cur")
		return
		;;
	--interval | --listen | --to | --from | --container)
		return
		;;
	-a | --annotation)
		compopt -o nospace 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -W "egress.weir.io= ingress.weir.io=
			policy-mode.weir.io= monitor.weir.io=" -- "$cur")
		return
		;;
	esac

	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "--config --json --log-level --help
				--version" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
		fi
		return
	fi

	local opts='' ids=0
	case $cmd in
	status | gc) opts="--json" ;;
	list) opts="--json --ids" ;;
	stats) opts="--json" ids=1 ;;
	flows) opts="--follow --json" ids=1 ;;
	metrics) opts="--listen" ;;
	top) opts="--interval --sort --reverse --once" ;;
	policy)
		case $sub in
		'')
			mapfile -t COMPREPLY < <(compgen -W "check trace" -- "$cur")
			return
			;;
		check) opts="--json --container --annotation -a" ids=1 ;;
		trace)
			opts="--json --to --from" ids=1
			# after --to/--from PEER: the protocol
			if [[ ${COMP_WORDS[COMP_CWORD - 2]} == --to || ${COMP_WORDS[COMP_CWORD - 2]} == --from ]]; then
				compopt -o nospace 2>/dev/null
				mapfile -t COMPREPLY < <(compgen -W "tcp/ udp/ tcp udp icmp" -- "$cur")
				return
			fi
			;;
		esac
		;;
	esac
	if [[ $cur == -* ]] || [ "$ids" = 0 ]; then
		mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -W "$(_weir_ids "${cfg[@]}")" -- "$cur")
	fi
}

complete -F _weir weir
