-- Run before every RLS mode (rls/off.sql, shadow.sql, strict.sql), in the same
-- transaction: removes whatever policies any mode created, so each mode's script
-- applies from any starting state. Data is untouched; only policies change.
DROP POLICY IF EXISTS key_delegation ON api_keys;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['org_keys','users','agents','api_keys','installs','secrets','bindings','kv','usage_events','audit'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS tenant_shadow ON %I', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', t);
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
END $$;
