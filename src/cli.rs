//! Command-line definition (clap derive only). `plan` turns it into checked
//! values; `xtask` renders it into the man page and shell completions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The examples under `tw-inspect --help`; the exit codes are added after them.
pub const MAIN_EXAMPLES: &str = "Examples:
  tw-inspect list
  tw-inspect list --state time-wait --by local-port
  tw-inspect explain time-wait
  tw-inspect demo active-close";

#[derive(Parser, Debug)]
#[command(
    name = "tw-inspect",
    version,
    about = "See, count and understand TCP sockets, TIME_WAIT above all, from the kernel's sock_diag interface",
    long_about = "tw-inspect asks the kernel for TCP sockets over NETLINK_SOCK_DIAG (the interface ss uses), \
counts them by state, groups TIME_WAIT by peer and port, explains what each state means, \
and demonstrates TCP teardown live on loopback."
)]
pub struct Cli {
    /// When to color the output: auto colors only a terminal and honours NO_COLOR
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Count TCP sockets by state and show where TIME_WAIT comes from: incoming by local port, outgoing by destination
    #[command(after_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Explain TCP states in plain terms, and this host's TIME_WAIT settings
    #[command(after_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainArgs),
    /// Open and close loopback connections and show each TIME_WAIT claim as the kernel reports it
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Find which processes close connections first and so make the TIME_WAIT (root)
    #[command(after_help = WHO_EXAMPLES)]
    Who(WhoArgs),
    /// Monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
}

const LIST_EXAMPLES: &str = "Examples:
  tw-inspect list                                   summary: every state, TIME_WAIT incoming and outgoing
  tw-inspect list --by peer+port                    TIME_WAIT per peer address and port (the former default)
  tw-inspect list --state time-wait --by local-port  TIME_WAIT per local port
  tw-inspect list --state close-wait --sockets -p   CLOSE_WAIT sockets with their processes
  tw-inspect list --peer 10.0.0.0/8 --port 443      only sockets to 10/8 on port 443
  tw-inspect list --format json | jq .states
  tw-inspect list --sockets --format ndjson | jq -c 'select(.type == \"socket\")'
  tw-inspect list --sockets --sort expires -n 20    the 20 sockets whose timers end soonest
  tw-inspect list --format prometheus --output /var/lib/node_exporter/tw.prom
  tw-inspect list --format prometheus --prom-port 443,80   ports 443 and 80 always as their own series
  tw-inspect list --watch                           redraw every second, with the TIME_WAIT arrival rate
  tw-inspect list --watch 0.5 --count 10 --format json   ten JSON lines, one per sample
  sudo tw-inspect list --all-netns                  every network namespace (host, containers, pods), then the total
  sudo tw-inspect list --netns blue                 one namespace from `ip netns`, or /proc/PID/ns/net
  sudo tw-inspect list --conntrack                  the conntrack table beside the sockets: conntrack
                                                    TIME_WAIT vs socket TIME_WAIT, fill, drops
  sudo tw-inspect list --netns web1                 a container's namespace, by its name or id
  sudo tw-inspect list --netns shop/web-7f9c        a Kubernetes pod's, as POD_NAMESPACE/POD
  tw-inspect list --save host.twsnap                capture now, analyse anywhere later
  tw-inspect list --load host.twsnap --by local-port  the same views offline
  tw-inspect list --load ss.dump                    a file from `ss -tan -D ss.dump`

  TW_INSPECT_SOURCE=proc tw-inspect list            read /proc/net/tcp instead of sock_diag

If sock_diag is refused or missing (EPERM, EACCES, no inet_diag), list reads /proc/net/tcp and
/proc/net/tcp6 instead, warns once on stderr and reports \"source\": \"proc\" in JSON.

The table view adds a conntrack section by itself when the namespace's conntrack table is
notable (half full, drops counted, or far more entries than sockets); --conntrack always adds it,
in every format. Without CAP_NET_ADMIN the entries cannot be read: list says so on stderr,
shows the table's size and counters, and the socket part is unchanged.";

const EXPLAIN_EXAMPLES: &str = "Examples:
  tw-inspect explain              every state in one table
  tw-inspect explain time-wait    the long story of TIME_WAIT
  tw-inspect explain sysctls      this host's TIME_WAIT settings and what they mean
  tw-inspect explain conntrack    conntrack's own TIME_WAIT (120 s), and this namespace's table
  tw-inspect explain sysctls --load snap.twi   the settings saved in a snapshot
  sudo tw-inspect explain sysctls --netns blue the settings of network namespace blue
  tw-inspect explain close-wait --format json  the same text as data";

const DEMO_EXAMPLES: &str = "Examples:
  tw-inspect demo --list
  tw-inspect demo active-close lost-ack
  tw-inspect demo --pace 0 --format json";

const WHO_EXAMPLES: &str = "Examples:
  sudo tw-inspect who --duration 30s                 one row per command
  sudo tw-inspect who --duration 30s --by pid        one row per process
  sudo tw-inspect who --duration 0 --interval 5s     record until Ctrl-C, progress every 5 s
  sudo tw-inspect who --netns blue -d 30s            only processes in namespace blue; its TIME_WAIT
  sudo tw-inspect who --netns shop/web-7f9c -d 30s   only the processes of a pod (or a container: --netns web1)
  sudo tw-inspect who -d 1m --format json | jq '.processes[] | {comm, time_wait_now}'
  sudo tw-inspect who -d 50s --format prometheus --top 5 -o /var/lib/node_exporter/tw_who.prom
  sudo tw-inspect who -d 0 -i 30s --format prometheus -o tw_who.prom   counters since start, rewritten every 30 s

Active closes (a FIN sent first; these make TIME_WAIT) and aborts (a reset sent instead,
e.g. SO_LINGER 0: no TIME_WAIT, the peer sees ECONNRESET) are counted apart, one per connection.

Needs root (CAP_SYS_ADMIN) for tracefs; mounts it on /sys/kernel/tracing if absent.
Records in a private tracing instance that is removed on exit, Ctrl-C and SIGTERM.";

pub const CHECK_EXAMPLES: &str = "Examples:
  tw-inspect check -w time-wait=20000 -c time-wait=50000
  tw-inspect check -w port-pressure=50 -c port-pressure=80 --peer 10.0.0.7
  tw-inspect check -w time-wait:port=443=5000 -c time-wait:port=443=20000
  tw-inspect check -w time-wait:incoming=20000 -c time-wait:outgoing=20000
  tw-inspect check -c port-pressure:peer=10.0.0.5:5432=80
  tw-inspect check -c TcpExtTCPTimeWaitOverflow=0       any overflow since boot is critical
  tw-inspect check -w established=10: -c established=1:     alert when fewer connections
  sudo tw-inspect check -w close-wait=100 -c close-wait=1000 --all-netns
  tw-inspect check -w conntrack-fill=75 -c conntrack-fill=90 -w conntrack-drops=0

Prints one line: TW_INSPECT OK|WARNING|CRITICAL|UNKNOWN - summary | perfdata.
A threshold on a state that --state leaves out is UNKNOWN, never OK.";

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Formats of `list` (and `list --watch`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for people
    Table,
    /// One JSON document (one line per sample with --watch)
    Json,
    /// One JSON object per line: each socket with --sockets, then the summary ("type": "summary")
    Ndjson,
    /// RFC 4180 CSV with a header line
    Csv,
    /// Prometheus text exposition, for node_exporter's textfile collector
    Prometheus,
}

/// The order of `--sockets` rows.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortKeyArg {
    /// State, in the kernel's order (established first)
    State,
    /// Local address, then port
    Local,
    /// Peer address, then port
    Peer,
    /// Local port
    LocalPort,
    /// Peer port
    PeerPort,
    /// Time left on the timer, soonest first; sockets with no timer last
    Expires,
}

/// Formats of `explain` and `demo`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum TextFormat {
    /// Text for people
    Table,
    /// One JSON document
    Json,
}

/// Formats of `who`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum WhoFormat {
    /// Aligned columns for people
    Table,
    /// One JSON document
    Json,
    /// Prometheus text exposition
    Prometheus,
}

/// Which socket fields form a group.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GroupKeyArg {
    /// Incoming by local address and port, outgoing by peer address and port (default)
    Role,
    /// One group per state
    State,
    /// Peer address
    Peer,
    /// Peer port
    PeerPort,
    /// Peer address and port
    #[value(name = "peer+port")]
    PeerAndPort,
    /// Local address
    Local,
    /// Local port
    LocalPort,
    /// Local address and port
    #[value(name = "local+port")]
    LocalAndPort,
    /// The process that closed the connection first (needs --trace, root)
    Process,
}

/// Which sockets to look at; sent to the kernel as a state mask and a filter program.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// States, comma-separated, as ss spells them (time-wait, close-wait, established, listening...; also estab, syn-rcv, unconn), or a group: all, connected, synchronized, teardown, bucket, big [default: every state but bound-inactive]
    #[arg(short = 's', long, value_name = "LIST")]
    pub state: Option<String>,
    /// Local or peer port, N or N-M; repeat to match any of several (different filter flags must all match)
    #[arg(long, value_name = "PORT")]
    pub port: Vec<String>,
    /// Local port, N or N-M; repeat to match any of several (different filter flags must all match)
    #[arg(long, value_name = "PORT")]
    pub local_port: Vec<String>,
    /// Peer port, N or N-M; repeat to match any of several (different filter flags must all match)
    #[arg(long, value_name = "PORT")]
    pub peer_port: Vec<String>,
    /// Peer address, ADDR or ADDR/PREFIX; repeat to match any of several (different filter flags must all match)
    #[arg(long, value_name = "ADDR[/PREFIX]")]
    pub peer: Vec<String>,
    /// Local address, ADDR or ADDR/PREFIX; repeat to match any of several (different filter flags must all match)
    #[arg(long, value_name = "ADDR[/PREFIX]")]
    pub local: Vec<String>,
    /// IPv4 only
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Read one network namespace (root): a name under /run/netns, a container's name or id, a pod as POD_NAMESPACE/POD, or a path such as /proc/PID/ns/net
    #[arg(long, value_name = "NAME|PATH", conflicts_with = "all_netns")]
    pub netns: Option<String>,
    /// Read every network namespace on the host, each named after its container or pod and reported on its own and in total (root)
    #[arg(long)]
    pub all_netns: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Group by these fields [default: role: incoming by local port, outgoing by destination]; groups cover TIME_WAIT unless --state is given
    #[arg(short = 'b', long, value_enum, value_name = "KEY")]
    pub by: Option<GroupKeyArg>,

    /// With --format prometheus: these local ports' incoming TIME_WAIT are always series of their own, beside the top N (comma-separated or repeated, at most 64)
    #[arg(long, value_name = "PORTS")]
    pub prom_port: Vec<String>,

    /// Show the N largest groups [default: 10]; 0 shows all. With --sockets: at most N rows
    #[arg(short = 'n', long, value_name = "N", allow_hyphen_values = true)]
    pub top: Option<u32>,

    /// One row per socket instead of a summary, written as the kernel sends them
    #[arg(long)]
    pub sockets: bool,

    /// With --sockets: order the rows by KEY (ties keep the kernel's order). Holds every row in memory (80 to 160 bytes per socket: 130 MiB at a million), or N rows with --top N
    #[arg(long, value_enum, value_name = "KEY")]
    pub sort: Option<SortKeyArg>,

    /// Output format
    #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,

    /// Add the plain meaning of each state (table; CSV with --sockets)
    #[arg(short = 'e', long)]
    pub explain: bool,

    /// Show the process owning each socket (with --sockets)
    #[arg(short = 'p', long)]
    pub processes: bool,

    /// Write to FILE atomically (temporary file, then rename) instead of stdout; FILE must be a regular file or new (a symlink, FIFO, device or directory is refused)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Sample again every INTERVAL (seconds, or 500ms, 2s, 1m; default 1, at least 0.1 s) and show the changes; Ctrl-C stops
    #[arg(
        short = 'w',
        long,
        value_name = "INTERVAL",
        num_args = 0..=1,
        default_missing_value = "1"
    )]
    pub watch: Option<String>,

    /// With --watch: stop after N samples
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub count: Option<u64>,

    /// Save the raw socket table and host facts to FILE for later analysis
    #[arg(long, value_name = "FILE", conflicts_with_all = ["load", "watch", "all_netns"])]
    pub save: Option<PathBuf>,

    /// Analyse a snapshot (from --save, or a dump written by `ss -D`) instead of the live kernel
    #[arg(long, value_name = "FILE", conflicts_with_all = ["watch", "netns", "all_netns"])]
    pub load: Option<PathBuf>,

    /// With --by process: trace active closes for DURATION first (root)
    #[arg(long, value_name = "DURATION")]
    pub trace: Option<String>,

    /// Add the conntrack table: entries by conntrack state beside the socket counts, top destinations and sources, fill and drops (entries need CAP_NET_ADMIN)
    #[arg(long)]
    pub conntrack: bool,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A state (time-wait, close-wait, ...), `sysctls` or `conntrack`; none gives the table of all states
    #[arg(value_name = "STATE|sysctls|conntrack")]
    pub topic: Option<String>,

    /// With `sysctls`: read the values saved in a snapshot instead of this host's
    #[arg(long, value_name = "FILE")]
    pub load: Option<PathBuf>,

    /// With `sysctls`: read a network namespace's values (a name under /run/netns, a container, a pod as POD_NAMESPACE/POD, or a path such as /proc/PID/ns/net; root); host-wide knobs come from the host
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,

    /// Output format
    #[arg(short = 'f', long, value_enum, default_value_t = TextFormat::Table)]
    pub format: TextFormat,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Scenarios to run (all when none is named); see --list
    #[arg(value_name = "SCENARIO")]
    pub scenarios: Vec<String>,

    /// List the scenarios with the claim each one checks
    #[arg(long)]
    pub list: bool,

    /// Pause between steps, e.g. 1s, 500ms, 0 [default: 1s on a terminal, 0 otherwise]
    #[arg(long, value_name = "DURATION")]
    pub pace: Option<String>,

    /// Wait for Enter before each step (stdin must be a terminal; table format)
    #[arg(long)]
    pub step: bool,

    /// Use the host's loopback instead of a private network namespace
    #[arg(long)]
    pub host: bool,

    /// Number of TIME_WAIT sockets the `cost` scenario makes [default: 10000]
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub count: Option<u32>,

    /// Output format
    #[arg(short = 'f', long, value_enum, default_value_t = TextFormat::Table)]
    pub format: TextFormat,
}

#[derive(Args, Debug)]
pub struct WhoArgs {
    /// How long to record, e.g. 10s, 1m; 0 records until Ctrl-C
    #[arg(short = 'd', long, value_name = "DURATION", default_value = "10s")]
    pub duration: String,

    /// Print a progress line on stderr every INTERVAL while recording (at least 0.1 s)
    #[arg(short = 'i', long, value_name = "DURATION")]
    pub interval: Option<String>,

    /// Show the N busiest rows; 0 shows all
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        default_value_t = 10,
        allow_hyphen_values = true
    )]
    pub top: u32,

    /// One row per command (default: 300 runs of curl are one row) or per process
    #[arg(short = 'b', long, value_enum, default_value_t = WhoBy::Command)]
    pub by: WhoBy,

    /// Attribute only processes in this network namespace (a name under /run/netns, a container, a pod as POD_NAMESPACE/POD, or a path such as /proc/PID/ns/net), and match its TIME_WAIT
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: Option<String>,

    /// Output format
    #[arg(short = 'f', long, value_enum, default_value_t = WhoFormat::Table)]
    pub format: WhoFormat,

    /// Write to FILE atomically instead of stdout (a regular file or a new one: a symlink, FIFO, device or directory is refused); with --format prometheus and --interval, rewritten every interval
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Rows of `who`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum WhoBy {
    /// One row per command (and network namespace)
    Command,
    /// One row per process
    Pid,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Warning threshold METRIC[:SCOPE]=RANGE (repeatable); metrics, scopes and ranges below
    #[arg(short = 'w', long = "warning", value_name = "METRIC=RANGE")]
    pub warning: Vec<String>,

    /// Critical threshold METRIC[:SCOPE]=RANGE (repeatable)
    #[arg(short = 'c', long = "critical", value_name = "METRIC=RANGE")]
    pub critical: Vec<String>,
}
