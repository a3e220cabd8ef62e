-- One org's data. The file itself is the tenant boundary; every table still carries
-- org_id as the first column of every key (same shape as the pooled schema), and
-- every query filters on it, so a misplaced file answers zero rows.
CREATE TABLE org_keys (
    org_id      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    wrapped     BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, version)
);

CREATE TABLE users (
    org_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, name)
);

CREATE TABLE agents (
    org_id        TEXT NOT NULL,
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    on_behalf_of  TEXT NOT NULL,
    grants        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, name),
    FOREIGN KEY (org_id, on_behalf_of) REFERENCES users (org_id, id)
);

CREATE TABLE api_keys (
    org_id          TEXT NOT NULL,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    principal_kind  TEXT NOT NULL,
    principal_id    TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    hash            BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT,
    revoked_at      TEXT,
    last_used_at    TEXT,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE installs (
    org_id                TEXT NOT NULL,
    id                    TEXT NOT NULL,
    plugin                TEXT NOT NULL,
    version               TEXT NOT NULL,
    previous_version      TEXT,
    artifact_sha256       TEXT NOT NULL,
    config                TEXT NOT NULL,
    grants                TEXT NOT NULL,
    enabled               INTEGER NOT NULL,
    rate_limit_per_minute INTEGER,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, plugin)
);

CREATE TABLE secrets (
    org_id       TEXT NOT NULL,
    install_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    key_version  INTEGER NOT NULL,
    ciphertext   BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, install_id, name),
    FOREIGN KEY (org_id, install_id) REFERENCES installs (org_id, id) ON DELETE CASCADE
);

CREATE TABLE bindings (
    org_id      TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    install_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, agent_id, install_id),
    FOREIGN KEY (org_id, agent_id) REFERENCES agents (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, install_id) REFERENCES installs (org_id, id) ON DELETE CASCADE
);

CREATE TABLE kv (
    org_id      TEXT NOT NULL,
    install_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       BLOB NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, install_id, key),
    FOREIGN KEY (org_id, install_id) REFERENCES installs (org_id, id) ON DELETE CASCADE
);

-- Usage outlives uninstalls (billing needs it), so no foreign key to installs.
CREATE TABLE usage_events (
    org_id             TEXT NOT NULL,
    id                 TEXT NOT NULL,
    at                 TEXT NOT NULL,
    install_id         TEXT NOT NULL,
    plugin             TEXT NOT NULL,
    action             TEXT NOT NULL,
    actor_kind         TEXT NOT NULL,
    actor_id           TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    duration_us        INTEGER NOT NULL,
    fuel               INTEGER NOT NULL,
    peak_memory_bytes  INTEGER NOT NULL,
    host_calls         INTEGER NOT NULL,
    bytes_in           INTEGER NOT NULL,
    bytes_out          INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX usage_events_at ON usage_events (org_id, at);

-- Append-only. prev_hash/row_hash are reserved for the per-org hash chain.
CREATE TABLE audit (
    org_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    request_id  TEXT,
    details     TEXT NOT NULL,
    prev_hash   BLOB,
    row_hash    BLOB,
    PRIMARY KEY (org_id, seq)
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
