# Helpers shared by the benchmark scripts (sourced). The script sets W
# (its scratch directory) before sourcing; it records what it starts in
# live (processes) and srs (bench/subreaper instances).

live=() srs=()
# Kill what the script started, by pid: the children of every subreaper
# (the processes it runs and reaps), then the listed pids; a subreaper
# exits once it reaped all, and is killed only if it does not.
cleanup() {
	local p c i
	for p in "${srs[@]}"; do
		for c in $(cat /proc/$p/task/$p/children 2>/dev/null); do kill -9 "$c" 2>/dev/null; done
	done
	for p in "${live[@]}"; do kill -9 "$p" 2>/dev/null; done
	for ((i = 0; i < 300; i++)); do
		c=
		for p in "${srs[@]}"; do [ -e /proc/$p ] && [ "$(awk '{print $3}' /proc/$p/stat)" != Z ] && c=1; done
		[ -z "$c" ] && break
		sleep 0.01
	done
	for p in "${srs[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	live=() srs=()
}

# Median and minimum of the numbers on stdin ("nan" if none).
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
minimum() { sort -g | awk 'NR==1 {print; f=1} END {if (!f) print "nan"}'; }

# Wait until FILE has a line matching RE (up to S seconds).
wait_line() { # file re seconds
	local i
	for ((i = 0; i < $3 * 200; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.005
	done
	return 1
}

# Wait until pid no longer exists (up to 10 s).
pid_gone() {
	local i
	for ((i = 0; i < 1000; i++)); do
		[ -e /proc/$1 ] || return 0
		sleep 0.01
	done
	echo "pid $1 still present" >&2
	return 1
}
