-- Control plane: global data no tenant owns, plus the API key index.
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    tier        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE operator_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);

-- Where each API key's record lives: org_id NULL = operator key.
CREATE TABLE key_index (
    hash        BLOB PRIMARY KEY,
    key_id      TEXT NOT NULL UNIQUE,
    org_id      TEXT
);

CREATE TABLE publishers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE publisher_keys (
    key_id       TEXT PRIMARY KEY,
    publisher_id TEXT NOT NULL REFERENCES publishers(id),
    public_key   TEXT NOT NULL UNIQUE,
    not_before   TEXT NOT NULL,
    not_after    TEXT,
    revoked_at   TEXT,
    created_at   TEXT NOT NULL
);

CREATE TABLE plugins (
    name            TEXT PRIMARY KEY,
    publisher       TEXT NOT NULL,
    latest_version  TEXT NOT NULL,
    description     TEXT NOT NULL,
    capabilities    TEXT NOT NULL,   -- JSON array of the latest version
    docs            TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE TABLE plugin_versions (
    plugin           TEXT NOT NULL REFERENCES plugins(name),
    version          TEXT NOT NULL,
    publisher        TEXT NOT NULL,
    manifest_json    TEXT NOT NULL,
    manifest_sha256  TEXT NOT NULL,
    artifact_sha256  TEXT NOT NULL,
    artifact_size    INTEGER NOT NULL,
    key_id           TEXT NOT NULL,
    signature        TEXT NOT NULL,
    signed_at        TEXT NOT NULL,
    published_at     TEXT NOT NULL,
    PRIMARY KEY (plugin, version)
);

CREATE TABLE reviews (
    plugin      TEXT NOT NULL REFERENCES plugins(name),
    org_id      TEXT NOT NULL,
    rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (plugin, org_id)
);
