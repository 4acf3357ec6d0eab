# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tw_inspect_global_optspecs
    string join \n color= h/help V/version
end

function __fish_tw_inspect_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tw_inspect_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tw_inspect_using_subcommand
    set -l cmd (__fish_tw_inspect_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -l color -d 'When to color the output: auto colors only a terminal and honours NO_COLOR' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -s V -l version -d 'Print version'
complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -f -a "who" -d 'Find which processes close connections first and so make the TIME_WAIT (root)'
complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -f -a "list" -d 'Count TCP sockets by state and show where TIME_WAIT comes from: incoming by local port, outgoing by destination'
complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -f -a "check" -d 'Monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN'
complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -f -a "explain" -d 'Explain TCP states in plain terms, and this host\'s TIME_WAIT settings'
complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -f -a "demo" -d 'Open and close loopback connections and show each TIME_WAIT claim as the kernel reports it'
complete -c tw-inspect -n "__fish_tw_inspect_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -s d -l duration -d 'How long to record, e.g. 10s, 1m; 0 records until Ctrl-C' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -s i -l interval -d 'Print a progress line on stderr every INTERVAL while recording (at least 0.1 s)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -s n -l top -d 'Show the N busiest rows; 0 shows all' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -s b -l by -d 'One row per command (default: 300 runs of curl are one row) or per process' -r -f -a "command\t'One row per command (and network namespace)'
pid\t'One row per process'"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -l netns -d 'Attribute only processes in this network namespace (a name under /run/netns, a container, a pod as POD_NAMESPACE/POD, or a path such as /proc/PID/ns/net), and match its TIME_WAIT' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -s f -l format -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'One JSON document'
prometheus\t'Prometheus text exposition'"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -s o -l output -d 'Write to FILE atomically instead of stdout (a regular file or a new one: a symlink, FIFO, device or directory is refused); with --format prometheus and --interval, rewritten every interval' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -l color -d 'When to color the output: auto colors only a terminal and honours NO_COLOR' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand who" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l port -d 'Local or peer port, N or N-M; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l local-port -d 'Local port, N or N-M; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l peer-port -d 'Peer port, N or N-M; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l peer -d 'Peer address, ADDR or ADDR/PREFIX; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l local -d 'Local address, ADDR or ADDR/PREFIX; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l netns -d 'Read one network namespace (root): a name under /run/netns, a container\'s name or id, a pod as POD_NAMESPACE/POD, or a path such as /proc/PID/ns/net' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s b -l by -d 'Group by these fields [default: role: incoming by local port, outgoing by destination]; groups cover TIME_WAIT unless --state is given' -r -f -a "role\t'Incoming by local address and port, outgoing by peer address and port (default)'
state\t'One group per state'
peer\t'Peer address'
peer-port\t'Peer port'
peer+port\t'Peer address and port'
local\t'Local address'
local-port\t'Local port'
local+port\t'Local address and port'
process\t'The process that closed the connection first (needs --trace, root)'"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l prom-port -d 'With --format prometheus: these local ports\' incoming TIME_WAIT are always series of their own, beside the top N (comma-separated or repeated, at most 64)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s n -l top -d 'Show the N largest groups [default: 10]; 0 shows all. With --sockets: at most N rows' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l sort -d 'With --sockets: order the rows by KEY (ties keep the kernel\'s order). Holds every row in memory (80 to 160 bytes per socket: 130 MiB at a million), or N rows with --top N' -r -f -a "state\t'State, in the kernel\'s order (established first)'
local\t'Local address, then port'
peer\t'Peer address, then port'
local-port\t'Local port'
peer-port\t'Peer port'
expires\t'Time left on the timer, soonest first; sockets with no timer last'"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s f -l format -d 'Output format' -r -f -a "table\t'Aligned columns for people'
json\t'One JSON document (one line per sample with --watch)'
ndjson\t'One JSON object per line: each socket with --sockets, then the summary ("type": "summary")'
csv\t'RFC 4180 CSV with a header line'
prometheus\t'Prometheus text exposition, for node_exporter\'s textfile collector'"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s o -l output -d 'Write to FILE atomically (temporary file, then rename) instead of stdout; FILE must be a regular file or new (a symlink, FIFO, device or directory is refused)' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s w -l watch -d 'Sample again every INTERVAL (seconds, or 500ms, 2s, 1m; default 1, at least 0.1 s) and show the changes; Ctrl-C stops' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l count -d 'With --watch: stop after N samples' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l save -d 'Save the raw socket table and host facts to FILE for later analysis' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l load -d 'Analyse a snapshot (from --save, or a dump written by `ss -D`) instead of the live kernel' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l trace -d 'With --by process: trace active closes for DURATION first (root)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s s -l state -d 'States, comma-separated, as ss spells them (time-wait, close-wait, established, listening...; also estab, syn-rcv, unconn), or a group: all, connected, synchronized, teardown, bucket, big [default: every state but bound-inactive]' -r -f -a "established\t''
syn-sent\t''
syn-recv\t''
fin-wait-1\t''
fin-wait-2\t''
time-wait\t''
closed\t''
close-wait\t''
last-ack\t''
listening\t''
closing\t''
new-syn-recv\t''
bound-inactive\t''
all\t''
connected\t''
synchronized\t''
teardown\t''
bucket\t''
big\t''"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l color -d 'When to color the output: auto colors only a terminal and honours NO_COLOR' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s 4 -l ipv4 -d 'IPv4 only'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s 6 -l ipv6 -d 'IPv6 only'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l all-netns -d 'Read every network namespace on the host, each named after its container or pod and reported on its own and in total (root)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l sockets -d 'One row per socket instead of a summary, written as the kernel sends them'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s e -l explain -d 'Add the plain meaning of each state (table; CSV with --sockets)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s p -l processes -d 'Show the process owning each socket (with --sockets)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -l conntrack -d 'Add the conntrack table: entries by conntrack state beside the socket counts, top destinations and sources, fill and drops (entries need CAP_NET_ADMIN)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -l port -d 'Local or peer port, N or N-M; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -l local-port -d 'Local port, N or N-M; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -l peer-port -d 'Peer port, N or N-M; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -l peer -d 'Peer address, ADDR or ADDR/PREFIX; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -l local -d 'Local address, ADDR or ADDR/PREFIX; repeat to match any of several (different filter flags must all match)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -l netns -d 'Read one network namespace (root): a name under /run/netns, a container\'s name or id, a pod as POD_NAMESPACE/POD, or a path such as /proc/PID/ns/net' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -s w -l warning -d 'Warning threshold METRIC[:SCOPE]=RANGE (repeatable); metrics, scopes and ranges below' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -s c -l critical -d 'Critical threshold METRIC[:SCOPE]=RANGE (repeatable)' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -s s -l state -d 'States, comma-separated, as ss spells them (time-wait, close-wait, established, listening...; also estab, syn-rcv, unconn), or a group: all, connected, synchronized, teardown, bucket, big [default: every state but bound-inactive]' -r -f -a "established\t''
syn-sent\t''
syn-recv\t''
fin-wait-1\t''
fin-wait-2\t''
time-wait\t''
closed\t''
close-wait\t''
last-ack\t''
listening\t''
closing\t''
new-syn-recv\t''
bound-inactive\t''
all\t''
connected\t''
synchronized\t''
teardown\t''
bucket\t''
big\t''"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -l color -d 'When to color the output: auto colors only a terminal and honours NO_COLOR' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -s 4 -l ipv4 -d 'IPv4 only'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -s 6 -l ipv6 -d 'IPv6 only'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -l all-netns -d 'Read every network namespace on the host, each named after its container or pod and reported on its own and in total (root)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand check" -s h -l help -d 'Print help'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand explain" -l load -d 'With `sysctls`: read the values saved in a snapshot instead of this host\'s' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand explain" -l netns -d 'With `sysctls`: read a network namespace\'s values (a name under /run/netns, a container, a pod as POD_NAMESPACE/POD, or a path such as /proc/PID/ns/net; root); host-wide knobs come from the host' -r -F
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand explain" -s f -l format -d 'Output format' -r -f -a "table\t'Text for people'
json\t'One JSON document'"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand explain" -l color -d 'When to color the output: auto colors only a terminal and honours NO_COLOR' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand explain" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -l pace -d 'Pause between steps, e.g. 1s, 500ms, 0 [default: 1s on a terminal, 0 otherwise]' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -l count -d 'Number of TIME_WAIT sockets the `cost` scenario makes [default: 10000]' -r -f
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -s f -l format -d 'Output format' -r -f -a "table\t'Text for people'
json\t'One JSON document'"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -l color -d 'When to color the output: auto colors only a terminal and honours NO_COLOR' -r -f -a "auto\t''
always\t''
never\t''"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -l list -d 'List the scenarios with the claim each one checks'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -l step -d 'Wait for Enter before each step (stdin must be a terminal; table format)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -l host -d 'Use the host\'s loopback instead of a private network namespace'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand help; and not __fish_seen_subcommand_from who list check explain demo help" -f -a "who" -d 'Find which processes close connections first and so make the TIME_WAIT (root)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand help; and not __fish_seen_subcommand_from who list check explain demo help" -f -a "list" -d 'Count TCP sockets by state and show where TIME_WAIT comes from: incoming by local port, outgoing by destination'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand help; and not __fish_seen_subcommand_from who list check explain demo help" -f -a "check" -d 'Monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand help; and not __fish_seen_subcommand_from who list check explain demo help" -f -a "explain" -d 'Explain TCP states in plain terms, and this host\'s TIME_WAIT settings'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand help; and not __fish_seen_subcommand_from who list check explain demo help" -f -a "demo" -d 'Open and close loopback connections and show each TIME_WAIT claim as the kernel reports it'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand help; and not __fish_seen_subcommand_from who list check explain demo help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand explain" -f -a "established syn-sent syn-recv fin-wait-1 fin-wait-2 time-wait closed close-wait last-ack listening closing new-syn-recv bound-inactive sysctls"
complete -c tw-inspect -n "__fish_tw_inspect_using_subcommand demo" -f -a "active-close server-close abort simultaneous reuse lost-ack timeout cost"
