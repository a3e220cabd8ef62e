-- Generations of the rows a server keeps in memory (the pooled store's `kept`
-- rows, issue 17): every write that can change a kept row adds one to its org's
-- counter, in the writing transaction. Each authenticated request reads its org's
-- counter (and the registry's, the nil uuid) in the same statement as its key
-- lookup, and a server answers from kept rows only if they were read at that
-- generation or later; so a write committed on any server applies to the next
-- request on every server. Appends (usage, audit), key-value data, secrets and a
-- key's last-used time do not count: nothing kept depends on them.
-- `org`, not `org_id`: this is no tenant table (no row-level security; it holds
-- counters only, and every request reads its org's before it has a tenant context).
CREATE TABLE generations (
    org  uuid PRIMARY KEY,
    gen  bigint NOT NULL
);

-- TG_ARGV[0]: the column naming the row's org; no argument: the registry (nil).
CREATE FUNCTION tenantry_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o uuid := '00000000-0000-0000-0000-000000000000';
BEGIN
    IF TG_NARGS > 0 THEN
        IF TG_OP = 'DELETE' THEN
            o := (to_jsonb(OLD) ->> TG_ARGV[0])::uuid;
        ELSE
            o := (to_jsonb(NEW) ->> TG_ARGV[0])::uuid;
        END IF;
    END IF;
    INSERT INTO generations AS g (org, gen) VALUES (o, 1)
        ON CONFLICT (org) DO UPDATE SET gen = g.gen + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER kept_users AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION tenantry_bump('org_id');
CREATE TRIGGER kept_agents AFTER INSERT OR UPDATE OR DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION tenantry_bump('org_id');
-- Every column but last_used_at (written at most once a minute per key).
CREATE TRIGGER kept_api_keys AFTER INSERT OR DELETE OR UPDATE OF
        org_id, id, name, principal_kind, principal_id, prefix, hash, created_at,
        expires_at, revoked_at
    ON api_keys FOR EACH ROW EXECUTE FUNCTION tenantry_bump('org_id');
CREATE TRIGGER kept_installs AFTER INSERT OR UPDATE OR DELETE ON installs
    FOR EACH ROW EXECUTE FUNCTION tenantry_bump('org_id');
CREATE TRIGGER kept_bindings AFTER INSERT OR UPDATE OR DELETE ON bindings
    FOR EACH ROW EXECUTE FUNCTION tenantry_bump('org_id');
CREATE TRIGGER kept_orgs AFTER INSERT OR UPDATE OR DELETE ON orgs
    FOR EACH ROW EXECUTE FUNCTION tenantry_bump('id');
CREATE TRIGGER kept_publisher_keys AFTER INSERT OR UPDATE OR DELETE ON publisher_keys
    FOR EACH ROW EXECUTE FUNCTION tenantry_bump();
