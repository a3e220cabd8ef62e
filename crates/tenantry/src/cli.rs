//! Command-line definitions (clap). One subcommand group per API resource.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "tenantry",
    version,
    about = "Multi-tenant WebAssembly plugin host for AI agents"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Server URL for client commands.
    #[arg(
        long,
        global = true,
        env = "TENANTRY_URL",
        default_value = "http://127.0.0.1:7431"
    )]
    pub url: String,
    /// API key for client commands.
    #[arg(long, global = true, env = "TENANTRY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
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

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (embedded store under ./data by default).
    Serve(ServerArgs),
    /// Pooled mode: create or migrate the PostgreSQL schema, switch the row-level
    /// security mode (forward or back), and grant the application role.
    Migrate {
        /// PostgreSQL URL of the role that owns the schema (not the app role).
        #[arg(long, env = "TENANTRY_MIGRATE_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// RLS mode: off, shadow or strict (default: the database's current mode, or
        /// strict for a new database).
        #[arg(long)]
        to: Option<String>,
        /// The role the server connects as; created (LOGIN, no password) if missing.
        #[arg(long, default_value = "tenantry_app")]
        app_role: String,
    },
    /// Operator tasks on a local data directory.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Orgs (operator), and your own org.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Users of an org.
    #[command(subcommand)]
    User(UserCmd),
    /// Agents: non-human principals acting for a user.
    #[command(subcommand)]
    Agent(AgentCmd),
    /// API keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Registry publishers (operator).
    #[command(subcommand)]
    Publisher(PublisherCmd),
    /// Plugins: author tools (keygen, sign, publish) and the registry.
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Installs of plugins in your org.
    #[command(subcommand)]
    Install(InstallCmd),
    /// Install secrets (write-only).
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Your org's audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Invoke an action of an install (by id or plugin name).
    Invoke {
        install: String,
        action: String,
        /// JSON input (or @file.json).
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// Your org's usage: events (`list`, the default), `summary`, `export`.
    #[command(args_conflicts_with_subcommands = true)]
    Usage {
        #[command(subcommand)]
        cmd: Option<UsageCmd>,
        #[command(flatten)]
        list: UsageListArgs,
    },
    /// A guided, self-checking tour on a fresh data directory: two orgs, the same
    /// plugins, different config and secrets, isolation shown and checked.
    Demo {
        /// Where to keep the demo's data (default: a new temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
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
    /// Only events of this install (id).
    #[arg(long)]
    pub install_id: Option<String>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct UsageListArgs {
    #[command(flatten)]
    pub range: UsageRange,
    /// Only events after this event id (the last id of the previous page).
    #[arg(long)]
    pub after: Option<String>,
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
    /// Every event in range as JSON lines or CSV, for a billing system.
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

#[derive(Subcommand, Debug)]
pub enum OrgCmd {
    /// Create an org (operator).
    Create {
        name: String,
        #[arg(long)]
        tier: Option<String>,
    },
    /// List orgs (operator).
    List,
    /// Change an org's tier (operator).
    SetTier { org: String, tier: String },
    /// Show your own org and permissions.
    Show,
    /// Your org's effective limits and where it stands against its quotas.
    Limits,
    /// Override some of an org's limits (operator), e.g.
    /// `--set '{"executions_per_day": 5000}'`; `--set '{}'` clears every override.
    SetLimits {
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
        name: String,
        #[arg(long, default_value = "member")]
        role: String,
        #[arg(long)]
        org: Option<String>,
    },
    List,
    SetRole {
        user: String,
        role: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Create an agent acting for a user (you, by default).
    Create {
        name: String,
        /// A permission to grant (repeat): invoke, read_org, read_audit, …
        #[arg(long = "grant", default_values = ["invoke"])]
        grants: Vec<String>,
        #[arg(long)]
        on_behalf_of: Option<String>,
    },
    List,
    Delete {
        agent: String,
    },
    /// Let an agent use an install.
    Bind {
        agent: String,
        install: String,
    },
    Unbind {
        agent: String,
        install: String,
    },
    /// List agent ↔ install bindings.
    Bindings,
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Create an API key for yourself, a user (--user) or an agent (--agent).
    Create {
        #[arg(long, default_value = "cli")]
        name: String,
        #[arg(long, conflicts_with = "agent")]
        user: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        /// Operators provision keys in an org with --org.
        #[arg(long)]
        org: Option<String>,
        /// Lifetime, e.g. 30d, 12h, 90m.
        #[arg(long)]
        expires_in: Option<String>,
    },
    List,
    Revoke {
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PublisherCmd {
    /// Register a publisher with its public key (operator).
    Register {
        name: String,
        #[arg(long)]
        public_key: String,
        #[arg(long)]
        not_before: Option<String>,
        #[arg(long)]
        not_after: Option<String>,
    },
    List,
    /// Add a key to a publisher (operator).
    AddKey {
        publisher: String,
        #[arg(long)]
        public_key: String,
        #[arg(long)]
        not_after: Option<String>,
    },
    /// Revoke a publisher key (operator).
    RevokeKey {
        key_id: String,
    },
}

/// Where a plugin's files are: a directory, or explicit paths.
#[derive(Args, Debug, Clone)]
pub struct PluginFiles {
    /// Plugin directory with tenantry.json and plugin.wasm.
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// Signature file (default: tenantry.sig.json next to the manifest).
    #[arg(long)]
    pub signature: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
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
        #[arg(long, env = "TENANTRY_PUBLISHER_KEY", default_value = "publisher.key")]
        key: PathBuf,
    },
    /// Publish a signed plugin version to the registry.
    Publish {
        #[command(flatten)]
        files: PluginFiles,
    },
    /// Search the registry.
    Search { query: Vec<String> },
    /// Show a plugin's details and versions.
    Show { name: String },
    /// Reviews of a plugin.
    Reviews { name: String },
    /// Write your org's review of a plugin.
    Review {
        name: String,
        #[arg(long)]
        rating: u8,
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
        plugin: String,
        #[arg(long)]
        version: Option<String>,
        /// Config as JSON, or @file.json.
        #[arg(long)]
        config: Option<String>,
        #[command(flatten)]
        grants: GrantArgs,
        #[arg(long)]
        disabled: bool,
    },
    List,
    /// Show an install (by id or plugin name).
    Show {
        install: String,
    },
    /// Replace an install's config (JSON or @file.json).
    Config {
        install: String,
        config: String,
    },
    /// Replace an install's grants.
    Grants {
        install: String,
        #[command(flatten)]
        grants: GrantArgs,
    },
    /// Set the install's own invocation rate limit (per minute, at most the tier's),
    /// or `none` to use the org's.
    RateLimit {
        install: String,
        per_minute: String,
    },
    Enable {
        install: String,
    },
    Disable {
        install: String,
    },
    /// Move to a newer (or any) version.
    Upgrade {
        install: String,
        #[arg(long)]
        version: Option<String>,
    },
    /// Go back to the previous version.
    Rollback {
        install: String,
    },
    /// Uninstall (destroys its secrets and data).
    Remove {
        install: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretCmd {
    /// Set a secret; the value is read from standard input.
    Set {
        install: String,
        name: String,
    },
    Delete {
        install: String,
        name: String,
    },
    List {
        install: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    List {
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        target: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}
