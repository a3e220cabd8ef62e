-- Back to RLS mode "off". Data is untouched; only policies change.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['org_keys','users','agents','api_keys','installs','secrets','bindings','kv','usage_events','audit'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS tenant_shadow ON %I', t);
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
END $$;
UPDATE rls_mode SET mode = 'off';
