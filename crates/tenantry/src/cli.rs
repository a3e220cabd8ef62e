//! Command-line definitions (clap). One subcommand group per API resource.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// `tenantry --version`: the version, the git commit it was built from, and the
/// plugin interface (WIT package) it serves.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TENANTRY_GIT_COMMIT"),
    ")\nserves WIT packages: ",
    env!("TENANTRY_WIT_PACKAGE"),
);

#[derive(Parser, Debug)]
#[command(
    name = "tenantry",
    version = VERSION,
    about = "Multi-tenant WebAssembly plugin host for AI agents"
)]
pub struct Cli {
    /// Print machine-readable JSON instead of human output; a failure prints one
    /// `{"error": {"code", "message"}}` object on standard error.
    #[arg(long, global = true)]
    pub json: bool,
    /// Client options given before the command (`tenantry --url URL org list`); the
    /// command's own (documented there) take them over.
    #[command(flatten)]
    pub early: EarlyClientArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// [`ClientArgs`] accepted before the subcommand, hidden: they belong to client
/// commands, whose help documents them.
#[derive(Args, Debug, Clone, Default)]
pub struct EarlyClientArgs {
    #[arg(long, hide = true, value_name = "URL")]
    pub url: Option<String>,
    #[arg(long, hide = true, value_name = "KEY")]
    pub api_key: Option<String>,
    #[arg(long, hide = true, value_name = "NAME")]
    pub profile: Option<String>,
    #[arg(long, hide = true, value_name = "FILE")]
    pub server_config: Option<PathBuf>,
}

/// Where the server is and who you are, for commands that call the API.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientArgs {
    /// Server URL [default: the login profile's, else `listen` of ./tenantry.toml
    /// (or --server-config), else http://127.0.0.1:7431].
    #[arg(long, global = true, env = "TENANTRY_URL", value_name = "URL")]
    pub url: Option<String>,
    /// API key [default: the login profile's; see `tenantry login`].
    #[arg(
        long,
        global = true,
        env = "TENANTRY_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// Login profile to use (see `tenantry login`) [default: default].
    #[arg(long, global = true, env = "TENANTRY_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// The server's configuration file, whose `listen` locates the server [default:
    /// ./tenantry.toml if present].
    #[arg(long, global = true, env = "TENANTRY_CONFIG", value_name = "FILE")]
    pub server_config: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on (ADDR:PORT).
    #[arg(long, env = "TENANTRY_LISTEN")]
    pub listen: Option<String>,
    /// Data directory (embedded store, artifacts, master key).
    #[arg(long, env = "TENANTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (default: ./tenantry.toml if present).
    #[arg(long, env = "TENANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: `json` or `human` (default: human on a terminal).
    #[arg(long, env = "TENANTRY_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Pooled mode: PostgreSQL URL of the application role (see `tenantry migrate`).
    #[arg(long, env = "TENANTRY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Share rate limits, concurrency and quotas with other nodes through Redis.
    #[arg(long, env = "TENANTRY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
}

/// `serve`'s arguments.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Refuse to start on a no-go of `tenantry doctor` (a deployment for real users).
    #[arg(long)]
    pub production: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (embedded store under ./data by default).
    Serve(ServeArgs),
    /// Check this deployment (the configuration `serve` would use, the key files,
    /// the database) against the launch no-go conditions; prints ok / warn / no-go
    /// with what to do, and exits non-zero on a no-go.
    Doctor(ServerArgs),
    /// Pooled mode: create or migrate the PostgreSQL schema, switch the row-level
    /// security mode (forward or back), and grant the application role.
    Migrate {
        /// PostgreSQL URL of the role that owns the schema (not the app role).
        #[arg(long, env = "TENANTRY_MIGRATE_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// RLS mode: off, shadow or strict (default: the database's current mode, or
        /// strict for a new database).
        #[arg(long, value_parser = ["off", "shadow", "strict"])]
        to: Option<String>,
        /// The role the server connects as; created (LOGIN, no password) if missing.
        #[arg(long, default_value = "tenantry_app")]
        app_role: String,
    },
    /// Operator tasks on a local data directory.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Check an API key against a server and remember both in a login profile (the
    /// key comes from --api-key/TENANTRY_API_KEY, else a hidden prompt, else
    /// standard input).
    Login {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Forget a login profile's URL and key.
    Logout {
        /// Login profile to forget [default: default].
        #[arg(long, env = "TENANTRY_PROFILE", value_name = "NAME")]
        profile: Option<String>,
    },
    /// Show which server and identity client commands use.
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Orgs (operator), and your own org.
    Org {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: OrgCmd,
    },
    /// Users of an org.
    User {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Agents: non-human principals acting for a user.
    Agent {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: AgentCmd,
    },
    /// API keys.
    Key {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Registry publishers (operator).
    Publisher {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: PublisherCmd,
    },
    /// Plugins: author tools (keygen, sign, publish) and the registry.
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Installs of plugins in your org.
    Install {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: InstallCmd,
    },
    /// Install secrets (write-only).
    Secret {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: SecretCmd,
    },
    /// Break-glass: the operator's ticketed, time-bound access to one org.
    Breakglass {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: BreakglassCmd,
    },
    /// The operator's own API keys (operator): several named keys, so one can be
    /// rotated or revoked without locking the platform out.
    OperatorKey {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: OperatorKeyCmd,
    },
    /// The master key (operator): make a new one, and rotate to it while serving
    /// (docs/operations.md, "Rotating keys").
    MasterKey {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: MasterKeyCmd,
    },
    /// Your org's audit trail.
    Audit {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Invoke an action of an install (by id or plugin name).
    Invoke {
        #[command(flatten)]
        client: ClientArgs,
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
        /// The action to run, one of the plugin's actions (see `tenantry plugin show`).
        action: String,
        /// JSON input (or @file.json).
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// Run a JavaScript script that calls your org's tools
    /// (`await callTool("@scope/plugin.action", args)`; `return` the result).
    #[command(group(clap::ArgGroup::new("source").required(true).args(["file", "eval"])))]
    Exec {
        #[command(flatten)]
        client: ClientArgs,
        /// The script file (`-` reads standard input).
        file: Option<PathBuf>,
        /// The script itself, instead of a file.
        #[arg(short = 'e', long = "eval", value_name = "CODE")]
        eval: Option<String>,
        /// JSON passed to the script as `input` (or @file.json).
        #[arg(long, default_value = "null")]
        input: String,
    },
    /// Your org's usage: events (`list`, the default), `summary`, `export`.
    #[command(args_conflicts_with_subcommands = true)]
    Usage {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        cmd: Option<UsageCmd>,
        #[command(flatten)]
        list: UsageListArgs,
    },
    /// A guided, self-checking tour on a fresh data directory: two orgs, the same
    /// plugins, different config and secrets, isolation shown and checked.
    Demo {
        /// Keep the demo's data in this new directory, to explore it afterwards with
        /// `tenantry serve` (default: a temporary directory, deleted at the end).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print a shell completion script, e.g. `tenantry completions bash >
    /// ~/.local/share/bash-completion/completions/tenantry`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// A time range and install filter shared by the usage commands.
#[derive(Args, Debug, Clone, Default)]
pub struct UsageRange {
    /// Only events at or after this time (RFC 3339, e.g. 2026-01-01T00:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Only events of this install (its id, or the installed plugin's name @scope/name).
    #[arg(long, visible_alias = "install")]
    pub install_id: Option<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct UsageListArgs {
    #[command(flatten)]
    pub range: UsageRange,
    /// Only events after this event id (the last id of the previous page).
    #[arg(long)]
    pub after: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Subcommand, Debug)]
pub enum UsageCmd {
    /// Usage events (one per invocation), oldest first.
    List(UsageListArgs),
    /// Counts, errors, p50/p95/p99 duration, fuel, host calls and bytes per group.
    Summary {
        #[command(flatten)]
        range: UsageRange,
        /// none, day (UTC), plugin, install or agent.
        #[arg(long, default_value = "none", value_parser = ["none", "day", "plugin", "install", "agent"])]
        group_by: String,
    },
    /// Every event in range as JSON lines or CSV, for a billing system. `--json` does
    /// not change the stream: jsonl (one JSON object per line, so it streams and can
    /// be appended to) is already machine-readable; with --output, `--json` prints a
    /// JSON summary of what was written.
    Export {
        #[command(flatten)]
        range: UsageRange,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
        format: String,
        /// Write to FILE (written to FILE.partial, renamed when complete) instead of
        /// standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Create the first operator API key if there is none, and print it once.
    Bootstrap(ServerArgs),
}

/// The tier help shared by `org create` and `org set-tier`.
const TIER_HELP: &str = "free, starter, enterprise, or a custom tier of the server's configuration";

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Create an org (operator).
    Create {
        /// The org's name (unique).
        name: String,
        /// The org's tier: free, starter, enterprise, or a custom tier of the
        /// server's configuration [default: the server's default_tier].
        #[arg(long)]
        tier: Option<String>,
    },
    /// List orgs (operator).
    List,
    /// Change an org's tier (operator).
    SetTier {
        /// The org (id or name).
        org: String,
        #[arg(help = TIER_HELP)]
        tier: String,
    },
    /// Suspend an org (operator): every key of it is refused with ORG_SUSPENDED
    /// until it is resumed; running invocations finish; its data is kept.
    Suspend {
        /// The org (id or name).
        org: String,
        /// Why (kept in the org's audit trail), e.g. a ticket reference.
        #[arg(long)]
        reason: String,
    },
    /// Resume a suspended org (operator): its keys work again.
    Resume {
        /// The org (id or name).
        org: String,
    },
    /// Export your org as JSON lines (admins and owners; an operator through a
    /// break-glass grant): members, agents and keys (metadata), installs with config
    /// and secret names (never values), bindings, key-value data, usage and the audit
    /// trail with its hashes. The last line is `end`; an export without it is
    /// refused as incomplete.
    Export {
        /// Write to this file (through FILE.partial, renamed when complete) instead
        /// of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Delete a suspended org (operator): its key is destroyed in the key vault
    /// (its secrets then decrypt from no copy of its data, old backups included),
    /// its data and audit trail are erased, and its id is never reused. Cannot be
    /// undone.
    Delete {
        /// The org (id or name).
        org: String,
        /// Confirms the deletion (required).
        #[arg(long)]
        yes: bool,
    },
    /// Show your own org and permissions.
    Show,
    /// Rotate your org's key (owners): a new version, every secret sealed again
    /// under it, the old versions deleted, in one step.
    RotateKey,
    /// Your org's effective limits and where it stands against its quotas.
    Limits,
    /// Override some of an org's limits (operator), e.g.
    /// `--set '{"executions_per_day": 5000}'`; `--set '{}'` clears every override.
    SetLimits {
        /// The org (id or name).
        org: String,
        /// JSON object of limits to override (or @file.json).
        #[arg(long)]
        set: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Add a user. Operators name the org with --org.
    Add {
        /// The user's name, e.g. alice@acme.
        name: String,
        /// owner, admin, member or viewer.
        #[arg(long, default_value = "member", value_parser = ["owner", "admin", "member", "viewer"])]
        role: String,
        /// The org to add the user to (id or name; operators only).
        #[arg(long)]
        org: Option<String>,
    },
    /// List your org's users. Operators name the org with --org.
    List {
        /// The org whose users to list (id or name; operators only).
        #[arg(long)]
        org: Option<String>,
    },
    /// Change a user's role.
    SetRole {
        /// The user (id or name).
        user: String,
        /// owner, admin, member or viewer.
        #[arg(value_parser = ["owner", "admin", "member", "viewer"])]
        role: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Create an agent acting for a user (you, by default).
    Create {
        /// The agent's name.
        name: String,
        /// A permission to grant (repeat): invoke, read_org, read_audit, …
        #[arg(long = "grant", default_values = ["invoke"])]
        grants: Vec<String>,
        /// The user the agent acts for (id or name) [default: you].
        #[arg(long)]
        on_behalf_of: Option<String>,
    },
    /// List your org's agents.
    List,
    /// Delete an agent and revoke its keys.
    Delete {
        /// The agent (id or name).
        agent: String,
    },
    /// Let an agent use an install.
    Bind {
        /// The agent (id or name).
        agent: String,
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
    },
    /// Stop an agent using an install.
    Unbind {
        /// The agent (id or name).
        agent: String,
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
    },
    /// List agent ↔ install bindings.
    Bindings,
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Create an API key for yourself, a user (--user) or an agent (--agent).
    Create {
        /// A name to recognise the key by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Create the key for this user (id or name).
        #[arg(long, conflicts_with = "agent")]
        user: Option<String>,
        /// Create the key for this agent (id or name).
        #[arg(long)]
        agent: Option<String>,
        /// Operators provision keys in an org with --org (id or name).
        #[arg(long)]
        org: Option<String>,
        /// Lifetime, e.g. 30d, 12h, 90m.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List your org's keys (never their secret part).
    List,
    /// Revoke a key.
    Revoke {
        /// The key (id, as in `tenantry key list`).
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PublisherCmd {
    /// Register a publisher with its public key (operator).
    Register {
        /// The publisher's name: the scope of its plugins (@name/…).
        name: String,
        /// The publisher's public key, as printed by `tenantry plugin keygen`.
        #[arg(long)]
        public_key: String,
        /// The key is valid from this time (RFC 3339) [default: now].
        #[arg(long)]
        not_before: Option<String>,
        /// The key is valid until this time (RFC 3339) [default: no end].
        #[arg(long)]
        not_after: Option<String>,
    },
    /// List publishers and their keys.
    List,
    /// Add a key to a publisher (operator).
    AddKey {
        /// The publisher (name).
        publisher: String,
        /// The new public key, as printed by `tenantry plugin keygen`.
        #[arg(long)]
        public_key: String,
        /// The key is valid until this time (RFC 3339) [default: no end].
        #[arg(long)]
        not_after: Option<String>,
    },
    /// Revoke a publisher key (operator).
    RevokeKey {
        /// The key id, as in `tenantry publisher list`.
        key_id: String,
    },
}

/// Where a plugin's files are: a directory, or explicit paths.
#[derive(Args, Debug, Clone)]
pub struct PluginFiles {
    /// Plugin directory with tenantry.json and plugin.wasm [default: .].
    pub dir: Option<PathBuf>,
    /// The manifest [default: DIR/tenantry.json].
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// The component [default: DIR/plugin.wasm].
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// Signature file (default: tenantry.sig.json next to the manifest).
    #[arg(long)]
    pub signature: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// Create a plugin project (Rust or JavaScript) with one `hello` action, a valid
    /// tenantry.json and a README with the build, sign and publish commands.
    New {
        /// The plugin's name: `name` or `@publisher/name` (lowercase letters, digits,
        /// `-`, `_`, `.`).
        name: String,
        /// The plugin's language.
        #[arg(long, default_value = "rust", value_parser = ["rust", "js"])]
        lang: String,
        /// The project directory to create (it must not exist, or be empty)
        /// [default: ./NAME, without the scope].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Your publisher name, the plugin's scope [default: the scope of
        /// `@publisher/name`, else my-publisher].
        #[arg(long)]
        publisher: Option<String>,
        /// Rust: the Tenantry Rust SDK (`sdk/rust` of a Tenantry checkout), written
        /// into Cargo.toml as a path dependency until the SDK is published
        /// [default: the checkout this binary was built from].
        #[arg(long, value_name = "DIR")]
        sdk_path: Option<PathBuf>,
    },
    /// Create a publisher signing key pair.
    Keygen {
        /// Where to write the secret key (mode 0600).
        #[arg(long, default_value = "publisher.key")]
        out: PathBuf,
    },
    /// Sign a manifest + artifact pair with your publisher key.
    Sign {
        #[command(flatten)]
        files: PluginFiles,
        /// Your publisher secret key file (from `tenantry plugin keygen`).
        #[arg(long, env = "TENANTRY_PUBLISHER_KEY", default_value = "publisher.key")]
        key: PathBuf,
    },
    /// Publish a signed plugin version to the registry.
    Publish {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        files: PluginFiles,
    },
    /// Search the registry.
    Search {
        #[command(flatten)]
        client: ClientArgs,
        /// Words to look for in names, descriptions and capabilities (none: list all).
        query: Vec<String>,
    },
    /// Show a plugin's details and versions.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        /// The plugin (@scope/name).
        name: String,
    },
    /// Reviews of a plugin.
    Reviews {
        #[command(flatten)]
        client: ClientArgs,
        /// The plugin (@scope/name).
        name: String,
    },
    /// Write your org's review of a plugin.
    Review {
        #[command(flatten)]
        client: ClientArgs,
        /// The plugin (@scope/name).
        name: String,
        /// 1 to 5.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5))]
        rating: u8,
        /// The review's text.
        #[arg(long, default_value = "")]
        body: String,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct GrantArgs {
    /// Allow outbound HTTP to a host (repeat).
    #[arg(long = "grant-egress")]
    pub egress: Vec<String>,
    /// Allow the install's key-value store.
    #[arg(long = "grant-kv")]
    pub kv: bool,
    /// Allow reading a secret (repeat).
    #[arg(long = "grant-secret")]
    pub secrets: Vec<String>,
    /// Allow calling another plugin's action: @scope/name or @scope/name#action (repeat).
    #[arg(long = "grant-tool")]
    pub tools: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum InstallCmd {
    /// Install a plugin into your org.
    Add {
        /// The plugin (@scope/name).
        plugin: String,
        /// A version or requirement, e.g. 1.2.0 or ^1 [default: the latest].
        #[arg(long)]
        version: Option<String>,
        /// Config as JSON, or @file.json.
        #[arg(long)]
        config: Option<String>,
        #[command(flatten)]
        grants: GrantArgs,
        /// Install it disabled (no invocations until `tenantry install enable`).
        #[arg(long)]
        disabled: bool,
    },
    /// List your org's installs.
    List,
    /// Show an install (by id or plugin name).
    Show {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
    },
    /// Replace an install's config (JSON or @file.json).
    Config {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
        /// The new config: JSON, or @file.json.
        config: String,
    },
    /// Replace an install's grants.
    Grants {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
        #[command(flatten)]
        grants: GrantArgs,
    },
    /// Set the install's own invocation rate limit (per minute, at most the tier's),
    /// or `none` to use the org's.
    RateLimit {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
        /// Invocations per minute, or `none`.
        per_minute: String,
    },
    /// Allow invocations again.
    Enable {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
    },
    /// Refuse invocations (config, secrets and data are kept).
    Disable {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
    },
    /// Move to a newer (or any) version.
    Upgrade {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
        /// A version or requirement [default: the latest].
        #[arg(long)]
        version: Option<String>,
    },
    /// Go back to the previous version.
    Rollback {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
    },
    /// Uninstall (destroys its secrets and data).
    Remove {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Set a secret; the value is read from a hidden prompt on a terminal, else from
    /// standard input (one trailing newline is dropped; an empty value is refused).
    Set {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
        /// The secret's name, as the plugin's manifest declares it.
        name: String,
    },
    /// Delete a secret.
    Delete {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
        /// The secret's name.
        name: String,
    },
    /// List an install's secrets (names and versions, never values).
    List {
        /// The install: its id, or the installed plugin's name (@scope/name).
        install: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum OperatorKeyCmd {
    /// Create an operator key and print it once.
    Create {
        /// A name to recognise it by (who holds it, what for).
        name: String,
        /// When it stops working (RFC 3339); default never.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List operator keys, revoked and expired ones included.
    List,
    /// Revoke an operator key (by id), from the next request on; the last usable one
    /// cannot be revoked.
    Revoke {
        /// The key's id (from `tenantry operator-key list`).
        key_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MasterKeyCmd {
    /// Write a new random master key to a new file (mode 0600); nothing is
    /// overwritten. Runs locally: no server needed.
    New {
        /// The file to create.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Seal again under the new master key whatever still needs the one being
    /// retired, batch by batch until nothing remains (the server needs
    /// previous_master_key_file). Safe to stop and run again.
    Rotate {
        /// Orgs changed per request.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum BreakglassCmd {
    /// Open a grant in an org (operator): prints a token for that org only, which
    /// expires after --ttl; read-only unless --write. Every request made with it is
    /// in the org's audit trail with the ticket.
    Open {
        /// The org (id or name).
        #[arg(long)]
        org: String,
        /// The ticket this access is for.
        #[arg(long)]
        ticket: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// How long it works, e.g. 30m or 2h (at most the server's
        /// breakglass_max_ttl_minutes).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// Allow changes (what an owner may do).
        #[arg(long)]
        write: bool,
    },
    /// Grants, open and past: of an org (operator, --org) or of your org (admins).
    List {
        /// Operator: the org (id or name).
        #[arg(long)]
        org: Option<String>,
    },
    /// Approve a grant another operator opened (operator; where the server asks
    /// for a second operator's approval, `breakglass_approval = true`).
    Approve {
        /// The grant's id.
        id: String,
        /// The org (id or name).
        #[arg(long)]
        org: String,
    },
    /// End a grant early: in an org (operator, --org) or in your org (owners, admins).
    Close {
        /// The grant's id.
        id: String,
        /// Operator: the org (id or name).
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Your org's audit records, newest first.
    List {
        /// Only records of this action, e.g. install.create.
        #[arg(long)]
        action: Option<String>,
        /// Only records about this target (id).
        #[arg(long)]
        target: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Operator: the operator's own trail (orgs, break-glass, the registry).
        #[arg(long)]
        operator: bool,
    },
    /// Check the audit trail's hash chain and name the first entry that breaks it
    /// (edited, deleted, inserted or reordered); exits non-zero if one does.
    Verify {
        /// Operator: check this org (id or name) instead of your own.
        #[arg(long, conflicts_with = "all_orgs")]
        org: Option<String>,
        /// Operator: check every org, and the operator's own trail.
        #[arg(long, conflicts_with = "operator")]
        all_orgs: bool,
        /// Operator: check the operator's own trail.
        #[arg(long, conflicts_with = "org")]
        operator: bool,
    },
    /// Sign a checkpoint of the trail now: it pins the last entry with the server's
    /// audit key (the server also writes them periodically). Keep the printed copy
    /// outside the database.
    Checkpoint {
        /// Operator: checkpoint this org's trail (id or name).
        #[arg(long, conflicts_with = "operator")]
        org: Option<String>,
        /// Operator: checkpoint the operator's own trail.
        #[arg(long)]
        operator: bool,
    },
}
